// Training runs as a user starts them (src/train, `resnet train/eval`, `bench --train`): a run on a
// small image folder made here writes its files (weights torch loads with weights_only=True,
// resume state, log, plot), a resumed run gives the losses of an uninterrupted one exactly,
// fine-tuning swaps fc and a frozen backbone stays as loaded, eval reports accuracy/loss, and
// the plot and atomic writes do what they say. Sizes are tiny (16×16 images, resnet20): the
// point is behaviour, not accuracy.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { DOMParser } from '@xmldom/xmldom';
import { readSafetensors, readSafetensorsMetadata } from '../src/io/safetensors.js';
import { niceTicks, plotPanels } from '../src/tools/plot.js';
import { decodeModelMetadata, writeFileAtomic } from '../src/train/checkpoint.js';
import { splitIndices } from '../src/train/data.js';
import { train, type EpochRecord, type TrainOptions } from '../src/train/trainer.js';
import { repoRoot } from './helpers/paths.js';
import { runTorchPython, torchUnavailable } from './helpers/torch-python.js';

const work = mkdtempSync(join(tmpdir(), 'resnet-train-'));
const folder = join(work, 'shapes');
const bin = join(repoRoot, 'bin', 'resnet.js');

function resnet(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, RESNET_BACKEND: 'auto' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Two classes a small network tells apart: bright squares on the left or on the right, with noise. */
before(async () => {
  let seed = 12345;
  const random = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  for (const [c, name] of ['left', 'right'].entries()) {
    for (const split of ['train', 'val']) {
      const dir = join(folder, split, name);
      mkdirSync(dir, { recursive: true });
      for (let i = 0; i < (split === 'train' ? 12 : 6); i++) {
        const pixels = Buffer.alloc(20 * 20 * 3);
        for (let y = 0; y < 20; y++) {
          for (let x = 0; x < 20; x++) {
            const lit = (c === 0 ? x < 10 : x >= 10) && y > 4 && y < 15;
            const v = Math.min(255, Math.max(0, (lit ? 200 : 40) + Math.round((random() - 0.5) * 60)));
            pixels.fill(v, (y * 20 + x) * 3, (y * 20 + x) * 3 + 3);
          }
        }
        await sharp(pixels, { raw: { width: 20, height: 20, channels: 3 } }).png().toFile(join(dir, `${i}.png`));
      }
    }
  }
});

function options(out: string, more: Partial<TrainOptions> = {}): TrainOptions {
  return {
    arch: 'resnet20', data: folder, epochs: 3, batchSize: 8, optimizer: 'sgd', momentum: 0.9, nesterov: true,
    labelSmoothing: 0.1, warmupEpochs: 1, seed: 7, out, imageSize: 16, ...more,
  };
}

const losses = (log: EpochRecord[]): number[][] => log.map((r) => [r.trainLoss, r.valLoss, r.valAccuracy, r.lr]);

test('a run writes weights, resume state, log and plot; resuming gives the uninterrupted losses exactly', async () => {
  {
    const whole = join(work, 'whole');
    const full = await train(options(whole));
    assert.equal(full.log.length, 3);
    for (const r of full.log) assert.ok(Number.isFinite(r.trainLoss) && r.valAccuracy >= 0 && r.valAccuracy <= 1, JSON.stringify(r));
    for (const f of ['best.safetensors', 'best.pth', 'last.safetensors', 'last.pth', 'resume.safetensors', 'log.json', 'training.svg']) {
      assert.ok(existsSync(join(whole, f)), f);
    }
    assert.deepEqual(readdirSync(whole).filter((f) => f.endsWith('.tmp')), [], 'no temporary files left behind');
    const meta = decodeModelMetadata(readSafetensorsMetadata(readFileSync(join(whole, 'last.safetensors'))));
    assert.deepEqual(meta?.classes, ['left', 'right']);
    assert.equal(meta?.arch, 'resnet20');
    assert.equal(meta?.epoch, 3);
    const log = JSON.parse(readFileSync(join(whole, 'log.json'), 'utf8')) as { epochs: EpochRecord[] };
    assert.deepEqual(losses(log.epochs), losses(full.log));
    // The schedule anneals within the run: the last step's lr is far below the peak.
    assert.ok(full.log[2].lr < 0.1 * 0.05, `lr at the end ${full.log[2].lr}`);

    // Stop after one epoch, then resume to three.
    const parted = join(work, 'parted');
    const first = await train(options(parted, { epochs: 3 }), {
      onEpoch(record) {
        if (record.epoch === 1) throw Object.assign(new Error('stop'), { stop: true });
      },
    }).catch((e: Error & { stop?: boolean }) => (e.stop ? null : Promise.reject(e)));
    assert.equal(first, null);
    const resumed = await train(options(parted), {}, true);
    assert.deepEqual(losses(resumed.log), losses(full.log), 'resumed run differs from the uninterrupted one');
    const a = readSafetensors(readFileSync(join(whole, 'last.safetensors')));
    const b = readSafetensors(readFileSync(join(parted, 'last.safetensors')));
    for (const [key, t] of a) assert.deepEqual(b.get(key)!.data, t.data, key);
  }
});

test('torch loads the .pth with weights_only=True into the same tensors', { skip: torchUnavailable() }, () => {
  const path = join(work, 'whole', 'best.pth');
  const out = runTorchPython(
    'import sys, torch\nsd = torch.load(sys.argv[1], weights_only=True)\nprint(len(sd), float(sum(v.double().abs().sum() for v in sd.values() if v.is_floating_point())))',
    [path],
  );
  const [count, total] = out.trim().split(' ').map(Number);
  const ours = readSafetensors(readFileSync(join(work, 'whole', 'best.safetensors')));
  let sum = 0;
  for (const t of ours.values()) if (t.dtype === 'float32') for (const v of t.f32) sum += Math.abs(v);
  assert.equal(count, ours.size);
  assert.ok(Math.abs(total - sum) <= 1e-6 * sum, `${total} vs ${sum}`);
});

test('fine-tuning: a new fc for the data, and a frozen backbone keeps every backbone tensor', async () => {
  {
    // Pretrained "weights": the first run's, as a file.
    const pretrained = join(work, 'whole', 'best.safetensors');
    const out = join(work, 'frozen');
    await train(options(out, { weights: pretrained, freezeBackbone: true, epochs: 1 }));
    const before = readSafetensors(readFileSync(pretrained));
    const after = readSafetensors(readFileSync(join(out, 'last.safetensors')));
    let fcChanged = false;
    for (const [key, t] of after) {
      if (key.startsWith('fc.')) fcChanged ||= before.get(key)!.f32.some((v, i) => v !== t.f32[i]);
      else assert.deepEqual(t.data, before.get(key)!.data, `${key} changed with a frozen backbone`);
    }
    assert.ok(fcChanged, 'fc did not train');
    await assert.rejects(train(options(join(work, 'bad'), { freezeBackbone: true })), /--freeze-backbone needs --weights/);
  }
});

test('resnet train / eval / classify / bench --train from the command line', () => {
  const out = join(work, 'cli');
  const r = resnet('train', '--arch', 'resnet20', '--data', folder, '--image-size', '16', '--epochs', '1', '--batch-size', '8', '--out', out, '--json');
  assert.equal(r.status, 0, r.stderr);
  const record = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as EpochRecord & { best: boolean };
  assert.equal(record.epoch, 1);
  assert.match(r.stderr, /epoch 1\/1: train loss/);

  const e = resnet('eval', '--weights', join(out, 'best.safetensors'), '--data', folder, '--image-size', '16', '--json');
  assert.equal(e.status, 0, e.stderr);
  const result = JSON.parse(e.stdout) as { accuracy: number; loss: number; images: number };
  assert.equal(result.images, 12);
  assert.ok(Math.abs(result.accuracy - record.valAccuracy) < 1e-12 && Math.abs(result.loss - record.valLoss) < 1e-5 * Math.max(1, result.loss), `${JSON.stringify(result)} vs ${JSON.stringify(record)}`);

  const c = resnet('classify', join(folder, 'val', 'left', '0.png'), '--weights', join(out, 'best.safetensors'), '--json', '--topk', '2');
  assert.equal(c.status, 0, c.stderr);
  const predictions = (JSON.parse(c.stdout) as { predictions: { category: string }[] }).predictions.map((p) => p.category).sort();
  assert.deepEqual(predictions, ['left', 'right']);

  const b = resnet('bench', 'resnet20', '--train', '--batch', '4', '--input', '3x16x16', '--iterations', '2', '--warmup', '0', '--json');
  assert.equal(b.status, 0, b.stderr);
  const bench = JSON.parse(b.stdout) as { mode: string; medianMs: number; imagesPerSec: number };
  assert.equal(bench.mode, 'train');
  assert.ok(bench.medianMs > 0 && bench.imagesPerSec > 0);

  const missing = resnet('train', '--arch', 'resnet20', '--data', join(work, 'nowhere'), '--out', join(work, 'x'));
  assert.equal(missing.status, 3, missing.stderr);
  assert.match(missing.stderr, /nowhere/);
  const frozen = resnet('train', '--arch', 'resnet20', '--data', folder, '--freeze-backbone', '--out', join(work, 'y'));
  assert.equal(frozen.status, 2, frozen.stderr);
  const noResume = resnet('train', '--arch', 'resnet20', '--data', folder, '--resume', '--out', join(work, 'never-ran'));
  assert.equal(noResume.status, 3, noResume.stderr);
  assert.match(noResume.stderr, /resume\.safetensors not found/);
});

test('plot: round ticks, one polyline per series, valid SVG', () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0.31, 0.93, 4), [0.4, 0.6, 0.8]);
  const svg = plotPanels([
    { title: 'Loss', yLabel: 'loss', series: [{ label: 'train', values: [2, 1, 0.5], color: '#000' }, { label: 'val <b>', values: [2.2, 1.4, NaN], color: '#f00' }] },
    { title: 'Accuracy', yLabel: '%', series: [{ label: 'val', values: [50, 70, 80], color: '#00f' }] },
  ]);
  const doc = new DOMParser().parseFromString(svg, 'image/svg+xml');
  assert.equal(doc.getElementsByTagName('parsererror').length, 0);
  assert.equal(doc.getElementsByTagName('polyline').length, 3);
  assert.match(svg, /val &lt;b&gt;/);
});

test('atomic writes replace the file whole; the split is seeded and disjoint', async () => {
  const path = join(work, 'atomic.txt');
  await writeFileAtomic(path, 'first');
  await writeFileAtomic(path, 'second');
  assert.equal(readFileSync(path, 'utf8'), 'second');
  assert.deepEqual(readdirSync(work).filter((f) => f.includes('atomic') && f !== 'atomic.txt'), []);
  const [trainIdx, valIdx] = splitIndices(50, 0.2, 3);
  assert.equal(valIdx.length, 10);
  assert.deepEqual([...trainIdx, ...valIdx].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(splitIndices(50, 0.2, 3), [trainIdx, valIdx]);
  assert.notDeepEqual(splitIndices(50, 0.2, 4)[1], valIdx);
});
