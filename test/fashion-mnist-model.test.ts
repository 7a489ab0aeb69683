// The model that ships in models/fashion-mnist-resnet20/ (trained by `resnet train`, its log
// and plot beside it): its metadata says what classify needs, `resnet eval` reproduces the
// accuracy its log reports on Fashion-MNIST's test images, and `resnet classify` reads
// 28×28 grayscale PNGs of them — the first test images, rendered here from Debian's IDX files.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { readSafetensorsMetadata } from '../src/io/safetensors.js';
import { decodeModelMetadata } from '../src/train/checkpoint.js';
import { FashionMNIST, FASHION_MNIST_CLASSES, FASHION_MNIST_DEBIAN_ROOT } from '../src/data/index.js';
import { repoRoot } from './helpers/paths.js';

const folder = join(repoRoot, 'models', 'fashion-mnist-resnet20');
const weights = join(folder, 'best.safetensors');
const bin = join(repoRoot, 'bin', 'resnet.js');
const noData = existsSync(FASHION_MNIST_DEBIAN_ROOT) ? false : `${FASHION_MNIST_DEBIAN_ROOT} missing (apt-get install dataset-fashion-mnist)`;

function resnet(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Log {
  epochs: { epoch: number; valAccuracy: number; valLoss: number }[];
}

test('the shipped model says its architecture, classes and preprocessing', () => {
  const meta = decodeModelMetadata(readSafetensorsMetadata(readFileSync(weights)));
  assert.ok(meta, 'resnet-ts metadata');
  assert.equal(meta.arch, 'resnet20');
  assert.equal(meta.inChannels, 1);
  assert.deepEqual(meta.classes, FASHION_MNIST_CLASSES);
  assert.deepEqual([meta.preprocess.resize, meta.preprocess.crop], [28, 28]);
  const log = JSON.parse(readFileSync(join(folder, 'log.json'), 'utf8')) as Log;
  const best = log.epochs.reduce((a, b) => (b.valAccuracy > a.valAccuracy ? b : a));
  assert.equal(meta.epoch, best.epoch);
  assert.equal(meta.accuracy, best.valAccuracy);
  assert.ok(existsSync(join(folder, 'training.svg')));
});

test('resnet eval gives the accuracy and loss the log reports, on the 10,000 test images', { skip: noData }, () => {
  const log = JSON.parse(readFileSync(join(folder, 'log.json'), 'utf8')) as Log;
  const best = log.epochs.reduce((a, b) => (b.valAccuracy > a.valAccuracy ? b : a));
  const r = resnet('eval', '--weights', weights, '--data', 'fashion-mnist', '--json');
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout) as { accuracy: number; loss: number; images: number };
  assert.equal(result.images, 10000);
  // Another backend or thread count may flip a near-tie: a few images of 10,000 at most.
  assert.ok(Math.abs(result.accuracy - best.valAccuracy) <= 5e-4, `${result.accuracy} vs the log's ${best.valAccuracy}`);
  assert.ok(Math.abs(result.loss - best.valLoss) <= 1e-3 * best.valLoss, `${result.loss} vs the log's ${best.valLoss}`);
});

test('resnet classify names the class of 28×28 grayscale PNGs', { skip: noData }, async () => {
  const data = await FashionMNIST.load({ train: false });
  const work = mkdtempSync(join(tmpdir(), 'resnet-fmnist-'));
  const paths: string[] = [];
  const labels: string[] = [];
  for (let i = 0; i < 20; i++) {
    const { image, target } = data.get(i);
    const path = join(work, `${i}.png`);
    await sharp(Buffer.from(image.data), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(path);
    paths.push(path);
    labels.push(FASHION_MNIST_CLASSES[target]);
  }
  const r = resnet('classify', ...paths, '--weights', weights, '--topk', '1', '--json');
  assert.equal(r.status, 0, r.stderr);
  const predicted = r.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { predictions: { category: string }[] }).predictions[0].category);
  const right = predicted.filter((p, i) => p === labels[i]).length;
  // The first 20 test images: the model is right on about 9 in 10 of all 10,000.
  assert.ok(right >= 16, `${right}/20 right: ${predicted.join(', ')} vs ${labels.join(', ')}`);
});
