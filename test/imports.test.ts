// The layering of src/ (STYLE.md point 9): a folder imports only from its own layer or the
// layers below it, so the model never reaches the CLI, the kernels never reach the model, and
// the browser entry can leave Node-only code out. Every relative import of every source file
// is read from the TypeScript source and checked against the table below; a new top-level
// folder must be given a layer here before its first import passes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { repoRoot } from './helpers/paths.js';

/** Lower numbers sit lower: an import may go to the same number or a smaller one. */
const LAYER: Record<string, number> = {
  platform: 0, // the one place Node-only or browser-only primitives live
  core: 0, // tensors, random numbers
  backends: 1, // kernels behind the Backend interface
  ops: 2, // shape checks, dispatch, the op trace
  autograd: 2,
  plan: 3, // the eval inference plan (reads the op trace)
  nn: 4, // modules and layers
  optim: 4,
  io: 4, // weight file formats
  preprocess: 4, // image decoding and torchvision transforms
  weights: 5, // pretrained descriptors and downloads
  data: 5, // data sets and loaders
  models: 6, // the ResNet family
  tools: 7, // summary, diagram, export, benchmark
  train: 7,
  cli: 8,
  web: 8,
};

const srcRoot = join(repoRoot, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The top-level folder of src/ that `path` is in, or '' for a file directly in src/ (an entry). */
function folderOf(path: string): string {
  const parts = relative(srcRoot, path).split(/[\\/]/);
  return parts.length > 1 ? parts[0] : '';
}

/** Relative module specifiers of import/export-from statements and dynamic imports. */
function relativeImports(source: string): string[] {
  const specifiers: string[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;
  for (const match of source.matchAll(pattern)) specifiers.push(match[1]);
  return specifiers;
}

test('every folder of src/ has a layer', () => {
  const folders = new Set(sourceFiles(srcRoot).map(folderOf).filter((f) => f !== ''));
  const unknown = [...folders].filter((f) => !(f in LAYER));
  assert.deepEqual(unknown, [], `give these folders a layer in test/imports.test.ts: ${unknown.join(', ')}`);
});

test('imports go to the same layer or below', () => {
  const violations: string[] = [];
  for (const file of sourceFiles(srcRoot)) {
    const from = folderOf(file);
    if (from === '') continue; // entry points re-export from every layer
    for (const specifier of relativeImports(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), specifier);
      const to = folderOf(target);
      if (to === '' || to === from) continue;
      if (!(to in LAYER) || !(from in LAYER)) continue; // reported by the test above
      if (LAYER[to] > LAYER[from]) violations.push(`${relative(repoRoot, file)} imports ${specifier} (${from} → ${to})`);
    }
  }
  assert.deepEqual(violations, [], `imports that go up a layer:\n${violations.join('\n')}`);
});

test('the checker sees imports (self-check on a known edge)', () => {
  const found = relativeImports("import { a } from '../core/tensor.js';\nexport * from './x.js';\nconst m = await import('../cli/main.js');");
  assert.deepEqual(found, ['../core/tensor.js', './x.js', '../cli/main.js']);
});
