// The browser entry as a bundler sees it, without a browser: esbuild bundles 'resnet-ts' for the
// browser, and its module graph must hold no Node module, no sharp, no progress bar, no CLI code
// and no protobufjs (ONNX export stays in the Node entry). Also: the modules the browser platform
// embeds (the .wasm, the worker's script) are what scripts/build-browser-assets.js generates, and
// the source maps we ship point at sources we ship.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { build, type Metafile } from 'esbuild';
import { repoRoot } from './helpers/paths.js';

/** Module paths no browser bundle may reach, and why. */
const FORBIDDEN: [RegExp, string][] = [
  [/^node:/, 'a Node built-in'],
  [/node_modules\/sharp\//, 'sharp (native image decoding, Node only)'],
  [/node_modules\/cli-progress\//, 'cli-progress (a terminal progress bar)'],
  [/node_modules\/commander\//, 'commander (CLI)'],
  [/node_modules\/protobufjs\//, 'protobufjs (ONNX export, Node entry only)'],
  [/(^|\/)src\/cli\//, 'CLI code'],
  [/(^|\/)src\/platform\/node[-.]/, "the Node platform"],
];

/** A temporary project whose node_modules/resnet-ts is this repository, as after `npm install`. */
function tempProject(): string {
  const dir = mkdtempSync(join(tmpdir(), 'resnet-ts-bundle-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(repoRoot, join(dir, 'node_modules', 'resnet-ts'), 'dir');
  return dir;
}

async function bundleForBrowser(source: string): Promise<{ metafile: Metafile; text: string }> {
  const dir = tempProject();
  try {
    writeFileSync(join(dir, 'entry.js'), source);
    const result = await build({
      absWorkingDir: dir,
      entryPoints: ['entry.js'],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      metafile: true,
      logLevel: 'silent',
    });
    return { metafile: result.metafile, text: result.outputFiles[0].text };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function forbiddenInputs(metafile: Metafile): string[] {
  const found: string[] = [];
  for (const [path, input] of Object.entries(metafile.inputs)) {
    for (const [pattern, what] of FORBIDDEN) if (pattern.test(path)) found.push(`${path}: ${what}`);
    for (const imported of input.imports) {
      for (const [pattern, what] of FORBIDDEN) if (pattern.test(imported.path)) found.push(`${path} imports ${imported.path}: ${what}`);
    }
  }
  return found;
}

test("esbuild bundles 'resnet-ts' for a browser with no configuration, and its graph holds no Node-only module", async () => {
  const { metafile, text } = await bundleForBrowser("import * as resnet from 'resnet-ts';\nglobalThis.resnet = resnet;\n");
  assert.deepEqual(forbiddenInputs(metafile), []);
  const inputs = Object.keys(metafile.inputs);
  assert.ok(inputs.some((p) => p.endsWith('dist/src/platform/browser.js')), 'the browser platform is in the bundle');
  assert.ok(inputs.some((p) => p.endsWith('dist/src/web.js')), "'resnet-ts' resolves to the browser entry");
  assert.ok(!text.includes('import.meta.url'), 'nothing is left for a bundler to find next to the module');
});

test("'resnet-ts/web' is the same entry, and exports what a page needs", async () => {
  const { metafile } = await bundleForBrowser("export * from 'resnet-ts/web';\n");
  assert.deepEqual(forbiddenInputs(metafile), []);
  const web = await import('../src/web.js');
  for (const name of ['initWasmBackend', 'createWasmBackend', 'setBackend', 'resnet18', 'readWeights', 'loadStateDictFromUrl', 'ImageClassification']) {
    assert.equal(typeof (web as Record<string, unknown>)[name], 'function', `web entry exports ${name}`);
  }
  const node = await import('../src/index.js');
  assert.equal(typeof node.exportOnnx, 'function');
  assert.equal(typeof node.initWasmBackend, 'function', 'the Node entry exports initWasmBackend too');
});

test('the Node entry still bundles for Node (platform node): the Node platform, not the browser one', async () => {
  const dir = tempProject();
  try {
    writeFileSync(join(dir, 'entry.js'), "export * from 'resnet-ts';\n");
    const result = await build({
      absWorkingDir: dir, entryPoints: ['entry.js'], bundle: true, write: false, format: 'esm', platform: 'node',
      packages: 'external', metafile: true, logLevel: 'silent',
    });
    assert.equal(result.errors.length, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // In Node, '#platform' is the Node platform.
  const { platform } = await import('#platform');
  assert.equal(platform.name, 'node');
});

test('the embedded .wasm and worker modules are what scripts/build-browser-assets.js generates', () => {
  const result = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'build-browser-assets.js'), '--check'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr + result.stdout);
});

test('every source map in dist/src points at a source file the package ships (src/)', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { files: string[] };
  assert.ok(pkg.files.includes('src'), "package.json files ships src/, which the maps name");
  const dist = join(repoRoot, 'dist', 'src');
  const missing: string[] = [];
  let maps = 0;
  for (const file of readdirSync(dist, { recursive: true }).map(String)) {
    if (!file.endsWith('.js.map')) continue;
    maps++;
    const map = JSON.parse(readFileSync(join(dist, file), 'utf8')) as { sources: string[] };
    for (const source of map.sources) {
      const path = resolve(dirname(join(dist, file)), source);
      if (!existsSync(path) || !relative(repoRoot, path).startsWith('src/')) missing.push(`${file} → ${source}`);
    }
  }
  assert.ok(maps > 0);
  assert.deepEqual(missing, []);
});

test('a minified bundle keeps the type names that summaries and diagrams show (minifiers rename classes)', async () => {
  const dir = tempProject();
  try {
    writeFileSync(join(dir, 'entry.js'), "import { resnet18, resnet20, summarize } from 'resnet-ts';\n" +
      "export const types = () => [resnet18(), resnet20()].flatMap((m) => summarize(m, [1, 3, 32, 32]).layers.map((r) => r.type));\n" +
      "export const title = () => resnet18().typeName;\n");
    const result = await build({
      absWorkingDir: dir, entryPoints: ['entry.js'], bundle: true, write: false, format: 'esm', platform: 'browser',
      minify: true, logLevel: 'silent',
    });
    const text = result.outputFiles[0].text;
    assert.ok(!/\bclass BasicBlock\b/.test(text), 'the bundle is minified: class names are gone');
    const file = join(dir, 'bundle.mjs');
    writeFileSync(file, text);
    const bundle = (await import(file)) as { types: () => string[]; title: () => string };
    const types = new Set(bundle.types());
    for (const name of ['Conv2d', 'BatchNorm2d', 'ReLU', 'MaxPool2d', 'Sequential', 'BasicBlock', 'AdaptiveAvgPool2d', 'Linear', 'ShortcutA']) {
      assert.ok(types.has(name), `'${name}' in the minified bundle's summary (got ${[...types].join(', ')})`);
    }
    assert.equal(bundle.title(), 'ResNet');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
