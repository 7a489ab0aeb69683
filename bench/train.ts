// The "Training" section of BENCHMARKS.md: whole training steps (forward, loss, backward,
// SGD step) of resnet-ts and PyTorch on the same models, batches and threads, each engine in a
// process of its own (bench/train_worker.ts, bench/torch_train.py), the engines of a case in
// turn for `rounds` rounds so that both meet the same machine. Medians over all timed steps.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { median } from '../src/tools/bench.js';
import type { TrainTask } from './train_worker.js';

export interface TrainCase {
  arch: string;
  input: [number, number, number];
  batch: number;
  classes: number;
}

/** The issue's reference points: ResNet-20 on Fashion-MNIST-sized images, ResNet-18/50 at 224×224. */
export const DEFAULT_TRAIN_CASES: TrainCase[] = [
  { arch: 'resnet20', input: [1, 28, 28], batch: 128, classes: 10 },
  { arch: 'resnet18', input: [3, 224, 224], batch: 16, classes: 1000 },
  { arch: 'resnet50', input: [3, 224, 224], batch: 8, classes: 1000 },
];

/** "resnet20:1x28x28:128,resnet18:3x224x224:16" → cases (1000 classes for 224×224 inputs, else 10). */
export function parseTrainCases(text: string): TrainCase[] {
  if (text === 'none') return [];
  return text.split(',').map((part) => {
    const [arch, input, batch] = part.split(':');
    const dims = input?.split('x').map(Number);
    if (!arch || !dims || dims.length !== 3 || dims.some((d) => !(d >= 1)) || !(Number(batch) >= 2)) {
      throw new Error(`--train-cases: '${part}' is not arch:CxHxW:batch (batch ≥ 2)`);
    }
    return { arch, input: dims as [number, number, number], batch: Number(batch), classes: dims[1] >= 224 ? 1000 : 10 };
  });
}

export interface TrainRow extends TrainCase {
  engine: 'resnet-ts' | 'pytorch';
  timesMs: number[];
  medianMs?: number;
  imagesPerSec?: number;
  cpuCores: number[];
  details?: Record<string, unknown>;
  error?: string;
}

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const workerPath = fileURLToPath(new URL('./train_worker.js', import.meta.url));
const torchPath = join(repoRoot, 'bench', 'torch_train.py');

function runOnce(command: string, args: string[], timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line) as Record<string, unknown>);
      } catch {
        resolve({ error: `exited with ${code} and no result${line ? `: ${line.slice(0, 200)}` : ''}` });
      }
    });
  });
}

/**
 * Times every case on resnet-ts (`backend`) and, where `python` is given, PyTorch: per case the
 * engines take turns, `rounds` times, each turn a fresh process that warms up once and times
 * at least `minIterations` steps and `minTimeMs`.
 */
export async function measureTraining(
  cases: TrainCase[], options: { threads: number; backend: string; python: string | null; rounds: number; minTimeMs: number; timeoutMs: number; log: (line: string) => void },
): Promise<TrainRow[]> {
  const rows: TrainRow[] = [];
  for (const c of cases) {
    const engines: TrainRow['engine'][] = options.python ? ['resnet-ts', 'pytorch'] : ['resnet-ts'];
    const byEngine = new Map(engines.map((engine) => [engine, { ...c, engine, timesMs: [] as number[], cpuCores: [] as number[] } as TrainRow]));
    for (let round = 0; round < options.rounds; round++) {
      for (const engine of round % 2 ? [...engines].reverse() : engines) {
        const row = byEngine.get(engine)!;
        if (row.error) continue;
        const task: TrainTask = { ...c, threads: options.threads, backend: options.backend, warmup: 1, minTimeMs: options.minTimeMs / options.rounds, minIterations: 2 };
        options.log(`train: ${c.arch} ${c.input.join('x')} batch ${c.batch} on ${engine}, round ${round + 1}/${options.rounds}`);
        const result = engine === 'pytorch'
          ? await runOnce(options.python!, [torchPath, JSON.stringify(task)], options.timeoutMs)
          : await runOnce(process.execPath, [workerPath, JSON.stringify(task)], options.timeoutMs);
        if (typeof result.error === 'string') {
          row.error = result.error;
          continue;
        }
        row.timesMs.push(...(result.timesMs as number[]));
        row.cpuCores.push(result.cpuCores as number);
        row.details = result;
      }
    }
    for (const row of byEngine.values()) {
      if (!row.error && row.timesMs.length) {
        row.medianMs = median(row.timesMs);
        row.imagesPerSec = (row.batch * 1000) / row.medianMs;
      }
      rows.push(row);
    }
  }
  return rows;
}

/** The section's Markdown. */
export function trainingSection(rows: TrainRow[], threads: number, skipped: string | null): string[] {
  const L = ['## Training steps', ''];
  L.push(`One training step as a training loop runs it: train-mode forward, cross-entropy against class indices, zero_grad, backward, SGD step (momentum 0.9, weight decay 1e-4), on a fixed random batch; seeded initial weights. resnet-ts: bench/train_worker.ts (its default backend); PyTorch: bench/torch_train.py (eager, as training runs; \`torch.set_num_threads(${threads})\`; the CIFAR ResNets as test/fixtures/cifar/make_cifar.py writes them). Each engine in a fresh process per round, the two in turn; one untimed warm-up step per process. Median over all timed steps.`, '');
  L.push('| model | input | batch | engine | median ms / step | images/s | steps | cores busy | resnet-ts ÷ PyTorch |');
  L.push('|:---|:---|---:|:---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const label = r.engine === 'resnet-ts' ? `resnet-ts (${r.details?.backend ?? '?'}${r.details?.isa ? `, ${r.details.isa}` : ''})` : `PyTorch ${r.details?.version ?? ''}`;
    if (r.error || r.medianMs === undefined) {
      L.push(`| ${r.arch} | ${r.input.join('×')} | ${r.batch} | ${label} | not timed: ${(r.error ?? 'no steps').split('\n')[0].replace(/\|/g, '\\|')} | | | | |`);
      continue;
    }
    const torch = rows.find((t) => t.engine === 'pytorch' && t.arch === r.arch && t.batch === r.batch && t.input.join() === r.input.join());
    const ratio = r.engine === 'resnet-ts' && torch?.medianMs ? (r.medianMs / torch.medianMs).toFixed(2) : '';
    const cores = r.cpuCores.length ? (r.cpuCores.reduce((a, b) => a + b, 0) / r.cpuCores.length).toFixed(2) : '?';
    L.push(`| ${r.arch} | ${r.input.join('×')} | ${r.batch} | ${label} | ${r.medianMs.toFixed(1)} | ${r.imagesPerSec!.toFixed(1)} | ${r.timesMs.length} | ${cores} | ${ratio} |`);
  }
  if (!rows.length) L.push('| no training case was run | | | | | | | | |');
  if (skipped) L.push('', `PyTorch was not run: ${skipped}.`);
  L.push('');
  return L;
}

interface EpochLog {
  epoch: number;
  valAccuracy: number;
  seconds: number;
  imagesPerSecond: number;
}

/**
 * The "Training from scratch" section: the shipped Fashion-MNIST model's own log (written by
 * `resnet train` as it trained, models/<name>/log.json): its recipe, the test accuracy after
 * every epoch and the time. Nothing is re-measured here: the section reports that run.
 */
export function fromScratchSection(logPath: string, modelDir: string): string[] {
  const log = JSON.parse(readFileSync(logPath, 'utf8')) as { options: Record<string, unknown>; epochs: EpochLog[] };
  const o = log.options;
  const epochs = log.epochs;
  const best = epochs.reduce((a, b) => (b.valAccuracy > a.valAccuracy ? b : a));
  const seconds = epochs.reduce((s, e) => s + e.seconds, 0);
  const L = ['## Training from scratch', ''];
  L.push(
    `The shipped \`${modelDir}\`: ${o.arch} trained from scratch by \`resnet train --arch ${o.arch} --data ${o.data} --epochs ${o.epochs} --batch-size ${o.batchSize}\` ` +
      `(${o.optimizer}${o.nesterov ? ', Nesterov' : ''} momentum ${o.momentum}, lr ${o.lr}, weight decay ${o.weightDecay}, label smoothing ${o.labelSmoothing}, ${o.warmupEpochs} warm-up epoch then cosine, seed ${o.seed}), ` +
      `from its own \`log.json\` (the run's wall time per epoch, validation on the 10,000 test images included). Best: **${(best.valAccuracy * 100).toFixed(2)}%** after epoch ${best.epoch}; ` +
      `${(seconds / 60).toFixed(1)} minutes in all. Anchors: PyTorch 1.13, the same network and recipe for 15 epochs, 93.81% in 32 minutes on a 2-core Zen 3; the goal is ≥ 94% in ≤ 30 minutes.`,
    '',
  );
  L.push('| epoch | test accuracy | minutes (cumulative) | training images/s |', '|---:|---:|---:|---:|');
  let total = 0;
  for (const e of epochs) {
    total += e.seconds;
    L.push(`| ${e.epoch} | ${(e.valAccuracy * 100).toFixed(2)}% | ${(total / 60).toFixed(1)} | ${e.imagesPerSecond.toFixed(0)} |`);
  }
  L.push('');
  return L;
}
