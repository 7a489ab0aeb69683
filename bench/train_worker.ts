// Training steps of one engine in a process of its own, for the "Training" section of
// BENCHMARKS.md (bench/train.ts): `node dist/bench/train_worker.js '<task JSON>'` prints one
// JSON line with the step times. A step is src/tools/bench.ts's trainingStep (what `resnet bench
// --train` times); bench/torch_train.py is its PyTorch twin, step for step.

import { setBackend } from '../src/backends/index.js';
import { getModel } from '../src/models/builders.js';
import { backendIsa, benchmarkInput, timeRuns, trainingStep } from '../src/tools/bench.js';

export interface TrainTask {
  arch: string;
  /** [C, H, W] of one image. */
  input: [number, number, number];
  batch: number;
  classes: number;
  threads: number;
  backend: string;
  warmup: number;
  minTimeMs: number;
  minIterations: number;
}

const task = JSON.parse(process.argv[2]) as TrainTask;
try {
  const backend = setBackend(task.backend);
  backend.setThreads(task.threads);
  const model = getModel(task.arch, { numClasses: task.classes, inChannels: task.input[0], seed: 0 });
  const trainStep = trainingStep(model, benchmarkInput([task.batch, ...task.input]));
  let lastLoss = NaN;
  const step = (): void => {
    lastLoss = trainStep();
  };
  const timing = await timeRuns(step, {
    warmup: task.warmup,
    minTimeMs: task.minTimeMs,
    minIterations: task.minIterations,
    onProgress: (p) => process.stderr.write(`  ${task.arch} train batch ${task.batch} on resnet-ts/${backend.name}: ${p.phase} ${p.iteration}: ${p.ms.toFixed(0)} ms\n`),
  });
  process.stdout.write(`${JSON.stringify({ timesMs: timing.timesMs, cpuCores: timing.cpuCores, backend: backend.name, isa: backendIsa(backend), threads: backend.getThreads(), lastLoss })}\n`);
  process.exit(0);
} catch (e) {
  process.stdout.write(`${JSON.stringify({ error: (e as Error).stack ?? String(e) })}\n`);
  process.exit(1);
}
