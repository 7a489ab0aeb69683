// The fine-tuning benchmark's pipeline end to end on a tiny subset (bench/finetune_data.ts, then
// `resnet train` as bench/finetune.ts runs it): Fashion-MNIST classes rendered as grey PNG
// folders, a 1-channel ResNet-20 pretrained on classes 0-4, its .pth fine-tuned on classes 5-9
// whole and with --freeze-backbone (which must leave every backbone tensor as loaded), and the
// section's merge into an existing BENCHMARKS.md. Only resnet-ts runs here; PyTorch's side is
// the benchmark's.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Tensor } from '../src/core/tensor.js';
import { FashionMNIST, FASHION_MNIST_DEBIAN_ROOT } from '../src/data/index.js';
import { readSafetensors, readSafetensorsMetadata } from '../src/io/safetensors.js';
import { readWeights } from '../src/io/weights.js';
import { decodeModelMetadata } from '../src/train/checkpoint.js';
import { GRAY_MEAN, GRAY_STD, loadTrainData } from '../src/train/data.js';
import { mergeSection, SECTION_TITLE } from '../bench/finetune.js';
import { renderBenchmarkFolders } from '../bench/finetune_data.js';
import { repoRoot } from './helpers/paths.js';

const noData = existsSync(FASHION_MNIST_DEBIAN_ROOT) ? false : `${FASHION_MNIST_DEBIAN_ROOT} missing (apt-get install dataset-fashion-mnist)`;
const work = mkdtempSync(join(tmpdir(), 'resnet-finetune-'));

function resnet(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'resnet.js'), ...args], { encoding: 'utf8', env: { ...process.env, RESNET_BACKEND: 'auto' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const common = ['--arch', 'resnet20', '--grayscale', '--image-size', '28', '--epochs', '1', '--batch-size', '10', '--threads', '2', '--json'];

test('rendered folders, pretraining, fine-tuning whole and with a frozen backbone', { skip: noData }, async () => {
  const sizes = { pretrainTrain: 10, pretrainVal: 4, finetuneTrain: 10, finetuneVal: 4 };
  const folders = await renderBenchmarkFolders(work, sizes);
  assert.deepEqual(readdirSync(join(work, 'pretrain', 'train')).sort(), ['Coat', 'Dress', 'Pullover', 'T-shirt_top', 'Trouser']);
  assert.deepEqual(readdirSync(join(work, 'finetune', 'val')).sort(), ['Ankle boot', 'Bag', 'Sandal', 'Shirt', 'Sneaker']);
  assert.equal(readdirSync(join(work, 'finetune', 'train', 'Bag')).length, 10);
  assert.equal(folders.finetune.val, 20);
  // A PNG holds the test image it is named after, as one grey channel.
  const name = readdirSync(join(work, 'finetune', 'val', 'Bag')).sort()[0];
  const pngPath = join(work, 'finetune', 'val', 'Bag', name);
  assert.equal((await sharp(pngPath).metadata()).channels, 1);
  const png = await sharp(pngPath).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  const testSplit = await FashionMNIST.load({ train: false });
  const index = Number(name.slice(0, -4));
  assert.equal(testSplit.targets[index], 8, 'Bag is label 8');
  assert.deepEqual(new Uint8Array(png.data), testSplit.images.subarray(index * 784, (index + 1) * 784));
  // Asked again for the same folders, it leaves them as they are.
  const mtime = statSync(join(work, 'finetune', 'val', 'Bag', name)).mtimeMs;
  await renderBenchmarkFolders(work, sizes);
  assert.equal(statSync(join(work, 'finetune', 'val', 'Bag', name)).mtimeMs, mtime);

  const data = await loadTrainData(folders.finetune.root, { imageSize: 28, grayscale: true });
  assert.equal(data.inChannels, 1);
  assert.deepEqual(data.preprocess, { resize: 32, crop: 28, mean: GRAY_MEAN, std: GRAY_STD });
  assert.deepEqual((await data.val.get(0)).image.shape, [1, 28, 28]);

  const pretrained = join(work, 'pretrain-run');
  const p = resnet('train', '--data', folders.pretrain.root, '--out', pretrained, ...common);
  assert.equal(p.status, 0, p.stderr);
  const weights = join(pretrained, 'last.pth');
  const before = readWeights(readFileSync(weights));
  assert.deepEqual(before.get('conv1.weight')!.shape, [16, 1, 3, 3]);

  const runs: Record<string, Map<string, Tensor>> = {};
  for (const mode of ['full', 'frozen']) {
    const out = join(work, mode);
    const r = resnet('train', '--data', folders.finetune.root, '--weights', weights, ...(mode === 'frozen' ? ['--freeze-backbone'] : []), '--out', out, ...common);
    assert.equal(r.status, 0, r.stderr);
    const record = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { epoch: number; valAccuracy: number };
    assert.equal(record.epoch, 1);
    const bytes = readFileSync(join(out, 'last.safetensors'));
    const meta = decodeModelMetadata(readSafetensorsMetadata(bytes));
    assert.equal(meta?.inChannels, 1);
    assert.deepEqual(meta?.classes, ['Ankle boot', 'Bag', 'Sandal', 'Shirt', 'Sneaker']);
    runs[mode] = readSafetensors(bytes);
    assert.deepEqual(runs[mode].get('fc.weight')!.shape, [5, 64]);
    // eval reads --grayscale from the weights' metadata and agrees with the run's last epoch.
    const e = resnet('eval', '--weights', join(out, 'last.safetensors'), '--data', folders.finetune.root, '--image-size', '28', '--json');
    assert.equal(e.status, 0, e.stderr);
    assert.equal((JSON.parse(e.stdout) as { accuracy: number }).accuracy, record.valAccuracy);
  }
  let frozenFcChanged = false;
  let fullBackboneChanged = false;
  for (const [key, t] of before) {
    if (key.startsWith('fc.')) {
      frozenFcChanged ||= runs.frozen.get(key)!.f32.some((v, i) => v !== t.f32[i]);
      continue;
    }
    // Every backbone tensor — weights, BatchNorm's affine parameters, running statistics and count — as loaded.
    assert.deepEqual(runs.frozen.get(key)!.data, t.data, `${key} changed with --freeze-backbone`);
    if (t.dtype === 'float32') fullBackboneChanged ||= runs.full.get(key)!.f32.some((v, i) => v !== t.f32[i]);
  }
  assert.ok(frozenFcChanged, 'fc did not train with the backbone frozen');
  assert.ok(fullBackboneChanged, 'full fine-tuning left the backbone as loaded');

  // Grey weights on colour images: the error says what is missing.
  const colour = resnet('train', '--arch', 'resnet20', '--data', folders.finetune.root, '--weights', weights, '--image-size', '28', '--epochs', '1', '--out', join(work, 'colour'));
  assert.equal(colour.status, 3, colour.stderr);
  assert.match(colour.stderr, /add --grayscale/);
});

test('the section replaces its old self in BENCHMARKS.md and leaves the other sections alone', () => {
  const section = [SECTION_TITLE, '', 'new numbers', ''];
  const file = ['# Benchmarks', '', '## Results', '', 'a', '', SECTION_TITLE, '', 'old numbers', '', '## Later', '', 'b', ''].join('\n');
  assert.equal(mergeSection(file, section), ['# Benchmarks', '', '## Results', '', 'a', '', SECTION_TITLE, '', 'new numbers', '', '## Later', '', 'b', ''].join('\n'));
  assert.equal(mergeSection('# Benchmarks\n\n## Results\n\na\n', section), `# Benchmarks\n\n## Results\n\na\n\n${SECTION_TITLE}\n\nnew numbers\n`);
  assert.equal(mergeSection(mergeSection('# B\n', section), section), mergeSection('# B\n', section));
});
