// The demo page (examples/web) in a real browser: a production build (Vite's JS API) served by a
// local server, in headless Chromium. With seeded ResNet-18 weights (test/helpers/fill.ts,
// written as safetensors by our own writer) served from that server, the page classifies the
// committed sample image: five bars, the diagram, and logits equal to Node's for the same model
// and image. A layer's activation map is drawn when its block is clicked, equal to Node's. Cross-origin isolated,
// the wasm backend runs two threads (or as many as the browser offers, if fewer); not isolated,
// one, with a warning. A screenshot goes to test-output/demo.png.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { extractFeatures, getModel, ImageClassification, readImage, setBackend, summarize, Tensor, writeSafetensors } from '../../src/index.js';
import { browserSkipReason, launchChromium, serve, type BrowserSession, type TestServer } from '../helpers/browser.js';
import { deterministicStateDict } from '../helpers/fill.js';
import { repoRoot } from '../helpers/paths.js';

const skip = browserSkipReason();
const demoRoot = join(repoRoot, 'examples', 'web');
const samplePath = join(demoRoot, 'public', 'sample.png');
const outputDir = join(repoRoot, 'test-output');
/**
 * Logits (and a layer's activation map) may differ from Node's by this fraction of the largest:
 * the same kernels (wasm SIMD) run in both, on the same input, so they agree to rounding (in
 * practice bit for bit); the bound is the issue's.
 */
const LOGIT_TOLERANCE = 1e-5;
const PAGE_TIMEOUT_MS = 180_000;

let work = '';
let browser: BrowserSession | null = null;
let isolated: TestServer | null = null;
let plain: TestServer | null = null;
let stateDict: Map<string, Tensor> | null = null;
let weightsPath = '';

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'resnet-demo-'));
  const { build } = await import('vite');
  const outDir = join(work, 'site');
  await build({ configFile: join(demoRoot, 'vite.config.ts'), logLevel: 'error', build: { outDir, emptyOutDir: true } });
  stateDict = deterministicStateDict([...getModel('resnet18').stateDict()].map(([k, t]) => [k, t.shape] as const));
  weightsPath = join(work, 'resnet18.safetensors');
  writeFileSync(weightsPath, writeSafetensors(stateDict));
  const extra = { '/weights/resnet18.safetensors': weightsPath };
  isolated = await serve(outDir, { isolated: true, extra });
  plain = await serve(outDir, { isolated: false, extra });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await isolated?.close();
  await plain?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

interface DemoState {
  status: string;
  error: string | null;
}

/** Waits until the page's state says `status` (or fails with the page's error). */
async function waitForStatus(page: Page, status: string): Promise<void> {
  await page.waitForFunction(
    (wanted) => {
      const state = (window as unknown as { resnetDemo?: DemoState }).resnetDemo;
      return state && (state.status === wanted || state.status === 'error');
    },
    status,
    { timeout: PAGE_TIMEOUT_MS, polling: 100 },
  );
  const error = await page.evaluate(() => (window as unknown as { resnetDemo: DemoState }).resnetDemo.error);
  assert.equal(error, null, `the page reports: ${error}`);
}

/** Opens the demo with the seeded weights and waits for the sample image's classes. */
async function openClassified(server: TestServer): Promise<{ page: Page; console: string[] }> {
  const page = await browser!.context.newPage();
  await page.setViewportSize({ width: 1400, height: 1000 });
  const console: string[] = [];
  page.on('console', (message) => console.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => console.push(`pageerror: ${error.message}`));
  await page.goto(`${server.base}/?arch=resnet18&weights=/weights/resnet18.safetensors`);
  await waitForStatus(page, 'classified');
  return { page, console };
}

/**
 * Node's logits and input for the sample image (the library's own preprocessing and model, on
 * the wasm backend), and `module`'s output averaged over its channels, (H, W) row-major.
 */
async function nodeReference(module: string): Promise<{ input: Float32Array; logits: Float32Array; map: Float32Array }> {
  const model = getModel('resnet18');
  model.loadStateDict(stateDict!);
  model.eval();
  const input = new ImageClassification({ resizeSize: 256, cropSize: 224 }).forward(await readImage(samplePath));
  setBackend('wasm');
  try {
    const logits = model.call(input).f32.slice();
    const output = extractFeatures(model, input, [module]).get(module)!;
    const [, channels, height, width] = output.shape;
    const map = new Float32Array(height * width);
    for (let c = 0; c < channels; c++) for (let i = 0; i < map.length; i++) map[i] += output.f32[c * map.length + i];
    for (let i = 0; i < map.length; i++) map[i] /= channels;
    return { input: input.f32, logits, map };
  } finally {
    setBackend('auto');
  }
}

function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

test('the demo classifies the sample image with weights from the server, as Node does, on two threads', { skip }, async () => {
  const { page, console } = await openClassified(isolated!);
  try {
    const result = await page.evaluate(() => {
      const state = (window as unknown as { resnetDemo: { last: { logits: Float32Array; input: Float32Array; threads: number; backend: string; warning: string | null } } }).resnetDemo;
      return {
        logits: Array.from(state.last.logits),
        input: Array.from(state.last.input),
        threads: state.last.threads,
        backend: state.last.backend,
        warning: state.last.warning,
        isolated: crossOriginIsolated,
        cores: navigator.hardwareConcurrency,
        bars: document.querySelectorAll('#top5 .bar').length,
        blocks: document.querySelectorAll('#diagram svg g.module').length,
        timing: document.querySelector('#timing')?.textContent ?? '',
      };
    });
    assert.equal(result.isolated, true, 'the page is cross-origin isolated (COOP/COEP)');
    assert.match(result.backend, /^wasm/);
    if (result.cores >= 2) assert.ok(result.threads >= 2, `threads ${result.threads} with ${result.cores} cores`);
    else assert.equal(result.threads, 1);
    assert.equal(result.warning, null);
    assert.equal(result.bars, 5);
    assert.ok(result.blocks > 20, `the diagram has ${result.blocks} interactive blocks`);
    assert.match(result.timing, /^forward pass [\d.]+ ms.* · wasm · \d+ threads?$/);

    const reference = await nodeReference('layer2');
    // The PNG is lossless and both sides run the same preprocessing code: the inputs are equal.
    assert.deepEqual(result.input, Array.from(reference.input), 'the page preprocessed the image as Node does');
    const scale = maxAbs(reference.logits);
    let worst = 0;
    for (let i = 0; i < reference.logits.length; i++) worst = Math.max(worst, Math.abs(result.logits[i] - reference.logits[i]));
    assert.equal(result.logits.length, 1000);
    assert.ok(worst <= LOGIT_TOLERANCE * scale, `logits differ from Node's by ${worst} (largest logit ${scale})`);

    // Hovering a convolution shows its numbers and map; clicking a stage pins it.
    await page.locator('#diagram g[data-module="layer3.0.conv1"]').hover();
    await waitForStatus(page, 'activation:layer3.0.conv1');
    assert.match((await page.textContent('#layer-name')) ?? '', /^layer3\.0\.conv1 · Conv2d$/);

    // A block of the diagram: its numbers, and its activation map over the crop.
    // The stage's own box, in its margin left of the blocks it holds (which are boxes of their own).
    await page.locator('#diagram g[data-module="layer2"]').click({ position: { x: 3, y: 40 } });
    await waitForStatus(page, 'activation:layer2');
    const layer2 = summarize(getModel('resnet18'), [1, 3, 224, 224]).layers.find((l) => l.name === 'layer2')!;
    assert.equal(await page.textContent('#layer-shape'), `[${layer2.outputShape!.join(', ')}]`);
    assert.equal(await page.textContent('#layer-params'), layer2.params.toLocaleString('en-US'));
    assert.equal(await page.textContent('#layer-macs'), layer2.macs.toLocaleString('en-US'));
    const painted = await page.evaluate(() => {
      const canvas = document.querySelector<HTMLCanvasElement>('#heatmap')!;
      const pixels = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let opaque = 0;
      for (let i = 3; i < pixels.length; i += 4) if (pixels[i] === 255) opaque++;
      return opaque / (pixels.length / 4);
    });
    assert.equal(painted, 1, 'the heat map covers the crop');
    const map = await page.evaluate(() => Array.from((window as unknown as { resnetDemo: { maps: Map<string, { map: Float32Array }> } }).resnetDemo.maps.get('layer2')!.map));
    assert.equal(map.length, reference.map.length);
    const mapScale = maxAbs(reference.map);
    const mapWorst = Math.max(...map.map((v, i) => Math.abs(v - reference.map[i])));
    assert.ok(mapWorst <= LOGIT_TOLERANCE * mapScale, `layer2's map differs from Node's by ${mapWorst} (largest ${mapScale})`);

    mkdirSync(outputDir, { recursive: true });
    await page.screenshot({ path: join(outputDir, 'demo.png'), fullPage: true });
    assert.deepEqual(console.filter((line) => line.startsWith('error') || line.startsWith('pageerror')), []);
  } finally {
    await page.close();
  }
});

test('the demo\'s sources type-check (strict) against the built package', () => {
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(demoRoot, 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('not cross-origin isolated, the demo runs one thread and says why; weights and images picked as files', { skip }, async () => {
  const { page } = await openClassified(plain!);
  try {
    const result = await page.evaluate(() => {
      const state = (window as unknown as { resnetDemo: { last: { threads: number; warning: string | null } } }).resnetDemo;
      return { isolated: crossOriginIsolated, threads: state.last.threads, warning: state.last.warning, status: document.querySelector('#status')?.textContent, bars: document.querySelectorAll('#top5 .bar').length };
    });
    assert.equal(result.isolated, false);
    assert.equal(result.threads, 1);
    assert.match(result.warning ?? '', /not cross-origin isolated/);
    assert.equal(result.status, result.warning);
    assert.equal(result.bars, 5);

    // The same weights and image picked as files give the same logits.
    const before = await page.evaluate(() => Array.from((window as unknown as { resnetDemo: { last: { logits: Float32Array } } }).resnetDemo.last.logits));
    await page.evaluate(() => ((window as unknown as { resnetDemo: { status: string } }).resnetDemo.status = 'picking'));
    await page.setInputFiles('#weights-file', weightsPath);
    await waitForStatus(page, 'classified');
    await page.evaluate(() => ((window as unknown as { resnetDemo: { status: string } }).resnetDemo.status = 'picking'));
    await page.setInputFiles('#image-file', samplePath);
    await waitForStatus(page, 'classified');
    const after = await page.evaluate(() => Array.from((window as unknown as { resnetDemo: { last: { logits: Float32Array } } }).resnetDemo.last.logits));
    assert.deepEqual(after, before);
    assert.match((await page.textContent('#image-name')) ?? '', /^sample\.png · 320×256$/);
  } finally {
    await page.close();
  }
});
