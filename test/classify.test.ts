// `resnet classify` end to end on a real photograph, offline with a local weights file: the
// probabilities equal softmax(model(ImageClassification(image))) computed through the library.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getModel, ImageClassification, readImage, writeSafetensors, IMAGENET_CATEGORIES } from '../src/index.js';
import { topK } from '../src/cli/classify.js';
import { deterministicStateDict } from './helpers/fill.js';
import { fixturePath, repoRoot } from './helpers/paths.js';

const work = mkdtempSync(join(tmpdir(), 'resnet-classify-'));
const weights = join(work, 'resnet18.safetensors');
const stateDict = deterministicStateDict([...getModel('resnet18').stateDict()].map(([k, t]) => [k, t.shape] as const));
writeFileSync(weights, writeSafetensors(stateDict));
const photos = readdirSync(fixturePath('preprocess', 'images')).filter((f) => f.endsWith('.jpg')).slice(0, 3).map((f) => fixturePath('preprocess', 'images', f));

test('classify prints the top-k categories with the probabilities of the library pipeline', async () => {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'resnet.js'), 'classify', ...photos, '--arch', 'resnet18', '--weights', weights, '--topk', '3', '--batch', '2', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, photos.length);

  const model = getModel('resnet18');
  model.loadStateDict(stateDict);
  model.eval();
  const images = await Promise.all(photos.map((p) => readImage(p)));
  const expected = topK(model.call(new ImageClassification({ resizeSize: 256, cropSize: 224 }).forward(images)), 3, IMAGENET_CATEGORIES);
  lines.forEach((line, i) => {
    assert.equal(line.image, photos[i]);
    assert.deepEqual(line.predictions.map((p: { index: number }) => p.index), expected[i].map((p) => p.index));
    line.predictions.forEach((p: { probability: number; category: string }, j: number) => {
      assert.ok(Math.abs(p.probability - expected[i][j].probability) < 1e-5);
      assert.equal(p.category, IMAGENET_CATEGORIES[expected[i][j].index]);
    });
    assert.ok(line.predictions[0].probability >= line.predictions[1].probability);
  });
});

test('classify: a missing image exits 3, an unknown weights name exits 2', () => {
  const bin = join(repoRoot, 'bin', 'resnet.js');
  const missing = spawnSync(process.execPath, [bin, 'classify', join(work, 'nope.jpg'), '--arch', 'resnet18', '--weights', weights], { encoding: 'utf8' });
  assert.equal(missing.status, 3, missing.stderr);
  const badName = spawnSync(process.execPath, [bin, 'classify', photos[0], '--arch', 'resnet18', '--weights', 'IMAGENET1K_V2'], { encoding: 'utf8' });
  assert.equal(badName.status, 2, badName.stderr);
});

test('classify without network suggests --weights <file> (exit 3)', () => {
  // An empty cache and a host that cannot resolve (.invalid, RFC 2606): what an offline machine sees.
  const home = mkdtempSync(join(tmpdir(), 'resnet-home-'));
  const r = spawnSync(
    process.execPath,
    [join(repoRoot, 'bin', 'resnet.js'), 'classify', photos[0], '--arch', 'resnet18', '--weights', 'https://weights.invalid/resnet18-f37072fd.pth'],
    { encoding: 'utf8', env: { ...process.env, RESNET_TS_HOME: home } },
  );
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stderr, /resnet: cannot download https:\/\/weights\.invalid\/resnet18-f37072fd\.pth: .*; without network access, pass --weights <file>/);
});
