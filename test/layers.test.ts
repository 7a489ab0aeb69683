// Keeps the layering of src/ visible and enforced: each folder imports only from the folders
// below it (core → backends → ops → plan → nn → optim → models → tools → cli), never upwards.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { repoRoot } from './helpers/paths.js';

/**
 * What each folder of src/ may import. The platform (Node's or a browser's APIs, src/platform,
 * imported as '#platform') sits just above the tensors, below every layer that needs it. Formats
 * (io), image preprocessing and the weight descriptors only need tensors, so they sit low; models
 * may use them to load weights. Data sets, transforms and the loader (data) need tensors and the
 * image code only. The inference plan works on traced ops, below the modules that run it in eval
 * mode.
 */
const ALLOWED: Record<string, string[]> = {
  core: [],
  platform: ['core'],
  backends: ['core', 'platform'],
  ops: ['core', 'backends'],
  plan: ['core', 'backends', 'ops'],
  nn: ['core', 'backends', 'ops', 'plan'],
  io: ['core', 'platform'],
  preprocess: ['core', 'platform', 'io'],
  weights: ['core', 'platform', 'io', 'preprocess'],
  data: ['core', 'platform', 'io', 'preprocess'],
  models: ['core', 'backends', 'ops', 'plan', 'nn', 'io', 'weights', 'preprocess'],
  optim: ['core', 'backends', 'ops', 'plan', 'nn'],
  tools: ['core', 'backends', 'ops', 'plan', 'nn', 'optim', 'io', 'weights', 'preprocess', 'models'],
  train: ['core', 'platform', 'backends', 'ops', 'plan', 'nn', 'optim', 'io', 'weights', 'preprocess', 'data', 'models', 'tools'],
  cli: ['core', 'platform', 'backends', 'ops', 'plan', 'nn', 'optim', 'io', 'weights', 'preprocess', 'data', 'models', 'tools', 'train'],
  web: ['core', 'backends', 'ops', 'plan', 'nn', 'optim', 'io', 'weights', 'preprocess', 'data', 'models', 'tools'],
};

const src = join(repoRoot, 'src');

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

test('src/ folders import only from the layers below them', () => {
  const violations: string[] = [];
  for (const file of sourceFiles(src)) {
    const folder = relative(src, file).split('/')[0];
    if (folder.endsWith('.ts')) continue; // src/index.ts re-exports everything
    const allowed = ALLOWED[folder];
    assert.ok(allowed, `src/${folder} has no place in the layering table of test/layers.test.ts`);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/(?:import|export)[^'"]*?from\s+['"]([.#][^'"]+)['"]|import\(\s*['"]([.#][^'"]+)['"]\s*\)/g)) {
      const specifier = match[1] ?? match[2];
      const target = specifier === '#platform' ? 'platform/index.ts' : relative(src, resolve(dirname(file), specifier));
      const targetFolder = target.split('/')[0];
      if (targetFolder === folder || target.startsWith('..')) continue;
      if (!allowed.includes(targetFolder)) violations.push(`${relative(repoRoot, file)} imports ${target}`);
    }
  }
  assert.deepEqual(violations, []);
});
