// One measurement in a process of its own, so that engines never share a heap, a thread pool
// or a spinning worker: `node dist/bench/worker.js '<task JSON>'` prints one JSON line on stdout
// (progress goes to stderr). Tasks:
//   reference  our model on the reference backend at the check input; writes our logits for
//              the others to be checked against, and reports how far they are from torch's
//   serve      checks the engine against our logits, warms it up, prints {"ready":true}, then times one
//              slice of runs per command line read from stdin ({"minTimeMs", "maxTimeMs",
//              "minIterations"}) and prints each slice's times, until {"done":true}: the parent
//              runs the engines of one model and batch in turn, round after round, so that
//              every engine meets the same machine (bench/run.ts); bench/torch_worker.py
//              serves PyTorch the same way

import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Tensor } from '../src/core/tensor.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { benchmarkInput, formatProgress, timeRuns } from '../src/tools/bench.js';
import { createEngine, modelFile, referencePath, relativeDifference, type Engine, type EngineSpec } from './engines.js';
import { osThreadCount, withOtherLoad } from './system.js';

export interface WorkerTask extends EngineSpec {
  mode: 'reference' | 'serve';
  batch: number;
  /** [C, H, W] of one image. */
  input: [number, number, number];
  warmup: number;
  /** Largest accepted max|engine − ours| / max|ours| at the check input. */
  tolerance: number;
}

const checkPath = (modelsDir: string, arch: string) => modelFile(modelsDir, arch, 'check.safetensors');

function readTensor(path: string, key: string): Tensor {
  const t = readSafetensors(readFileSync(path)).get(key);
  if (!t) throw new Error(`${path} has no '${key}'`);
  return t;
}

async function runOn(engine: Engine, x: Tensor): Promise<Float32Array> {
  await engine.setInput(x.f32, x.shape);
  return engine.run();
}

async function reference(task: WorkerTask): Promise<object> {
  const engine = await createEngine(task);
  const logits = await runOn(engine, readTensor(checkPath(task.modelsDir, task.arch), 'input'));
  const torchLogits = readTensor(checkPath(task.modelsDir, task.arch), 'logits');
  writeFileSync(referencePath(task.modelsDir, task.arch), writeSafetensors(new Map([['logits', new Tensor(logits, torchLogits.shape)]])));
  return { engine: task.engine, arch: task.arch, relDiffVsTorch: relativeDifference(logits, torchLogits.f32) };
}

/** Loads the engine and checks its logits against ours; then sets the timing input. */
async function prepare(task: WorkerTask): Promise<{ engine: Engine; base: Record<string, unknown>; error?: string }> {
  const engine = await createEngine(task);
  const check = await runOn(engine, readTensor(checkPath(task.modelsDir, task.arch), 'input'));
  const relDiff = relativeDifference(check, readTensor(referencePath(task.modelsDir, task.arch), 'logits').f32);
  const base = { engine: task.engine, arch: task.arch, batch: task.batch, threads: task.threads, relDiff };
  if (!(relDiff < task.tolerance)) {
    return { engine, base, error: `output differs from ours: max |Δ| / max |logit| = ${relDiff.toExponential(2)} ≥ ${task.tolerance}` };
  }
  const shape = [task.batch, ...task.input];
  await engine.setInput(benchmarkInput(shape).f32, shape);
  return { engine, base };
}

const emit = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

async function serve(task: WorkerTask): Promise<object> {
  const threadsBefore = osThreadCount();
  const { engine, base, error } = await prepare(task);
  if (error) return { ...base, error };
  const label = `${task.arch} batch ${task.batch} on ${task.engine}`;
  let lastMs = Infinity;
  for (let i = 0; i < task.warmup; i++) {
    const start = performance.now();
    await engine.run();
    lastMs = performance.now() - start;
  }
  emit({ ready: true });
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const command = JSON.parse(line) as { done?: boolean; minTimeMs: number; maxTimeMs: number; minIterations: number };
    if (command.done) break;
    // The other engines ran since this one's last slice: one run first (not timed) to bring
    // its weights back into the caches, unless runs are so long that it would not matter.
    const { result: timing, otherLoadCores } = await withOtherLoad(() =>
      timeRuns(() => engine.run(), {
        warmup: lastMs < 500 ? 1 : 0,
        minTimeMs: command.minTimeMs,
        maxTimeMs: command.maxTimeMs,
        minIterations: command.minIterations,
        onProgress: (p) => process.stderr.write(`  ${formatProgress(label, p)}\n`),
      }),
    );
    lastMs = timing.medianMs;
    emit({ slice: true, timesMs: timing.timesMs, cpuCores: timing.cpuCores, otherLoadCores });
  }
  return {
    ...base,
    osThreadsAdded: threadsBefore === null ? null : osThreadCount()! - threadsBefore,
    details: await engine.details(),
  };
}

const task = JSON.parse(process.argv[2]) as WorkerTask;
const modes = { reference, serve };
try {
  process.stdout.write(`${JSON.stringify(await modes[task.mode](task))}\n`);
  process.exit(0); // thread pools (ort-web's workers) would otherwise keep the process alive
} catch (e) {
  process.stdout.write(`${JSON.stringify({ engine: task.engine, arch: task.arch, batch: task.batch, error: (e as Error).stack ?? String(e) })}\n`);
  process.exit(1);
}
