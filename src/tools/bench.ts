// Benchmarks: how long one eval-mode forward pass of a ResNet (or one training step: forward,
// backward, SGD) takes on a backend, as median and minimum wall time over repeated runs after
// a warm-up, with the throughput
// that follows (images/s, and GFLOP/s from the summary's multiply-accumulate count).
// `timeRuns` is the timing loop itself, shared with bench/ where the same loop times the peers.

import { Tensor } from '../core/tensor.js';
import { Generator } from '../core/rng.js';
import { getBackend, setBackend, type Backend } from '../backends/index.js';
import { noGrad } from '../ops/autograd.js';
import * as F from '../ops/functional.js';
import { SGD } from '../optim/index.js';
import type { StateDict } from '../nn/module.js';
import { getModel, type AnyResNet, type BuilderOptions } from '../models/builders.js';
import { summarize } from './summary.js';

export interface BenchProgress {
  phase: 'warmup' | 'measure';
  /** 1-based index of the run that just finished. */
  iteration: number;
  /** Runs planned in this phase; null while the count is adaptive. */
  total: number | null;
  ms: number;
}

export interface TimingOptions {
  /** Untimed runs first (default 1). */
  warmup?: number;
  /** Timed runs; adaptive when omitted: at least `minIterations`, until `minTimeMs` has passed. */
  iterations?: number;
  /** Adaptive count: keep timing until this much time has been spent (default 3000 ms). */
  minTimeMs?: number;
  /** Adaptive count: never fewer runs than this (default 5)… */
  minIterations?: number;
  /** …nor more (default 50). */
  maxIterations?: number;
  /**
   * Adaptive count: stop once this much time has been spent, even below `minIterations` (at
   * least one run); warm-up also stops early past it. For engines too slow for the usual count.
   */
  maxTimeMs?: number;
  onProgress?: (progress: BenchProgress) => void;
}

export interface Timing {
  /** Wall time of each timed run, in order. */
  timesMs: number[];
  medianMs: number;
  minMs: number;
  /**
   * Process CPU time over wall time during the timed runs: about the number of cores the
   * work kept busy (all threads of this process, helpers included). NaN in a browser.
   */
  cpuCores: number;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Times `run` (sync or async) after a warm-up; see TimingOptions for how many runs. */
export async function timeRuns(run: () => unknown, options: TimingOptions = {}): Promise<Timing> {
  const warmup = options.warmup ?? 1;
  const minTimeMs = options.minTimeMs ?? 3000;
  const minIterations = options.minIterations ?? 5;
  const maxIterations = options.maxIterations ?? 50;
  const maxTimeMs = options.maxTimeMs ?? Infinity;
  const warmupStart = performance.now();
  for (let i = 1; i <= warmup; i++) {
    const start = performance.now();
    await run();
    options.onProgress?.({ phase: 'warmup', iteration: i, total: warmup, ms: performance.now() - start });
    if (options.iterations === undefined && performance.now() - warmupStart >= maxTimeMs) break;
  }
  const timesMs: number[] = [];
  // Browsers have no process CPU time: cpuCores is NaN there.
  const cpuStart = typeof process === 'undefined' ? null : process.cpuUsage();
  const wallStart = performance.now();
  for (;;) {
    if (options.iterations !== undefined) {
      if (timesMs.length >= options.iterations) break;
    } else {
      const spent = performance.now() - wallStart;
      if (timesMs.length >= maxIterations || (timesMs.length >= minIterations && spent >= minTimeMs)) break;
      if (timesMs.length >= 1 && spent >= maxTimeMs) break;
    }
    const start = performance.now();
    await run();
    const ms = performance.now() - start;
    timesMs.push(ms);
    options.onProgress?.({ phase: 'measure', iteration: timesMs.length, total: options.iterations ?? null, ms });
  }
  const wallMs = performance.now() - wallStart;
  const cpu = cpuStart && process.cpuUsage(cpuStart);
  return {
    timesMs,
    medianMs: median(timesMs),
    minMs: Math.min(...timesMs),
    cpuCores: cpu ? (cpu.user + cpu.system) / 1000 / wallMs : NaN,
  };
}

/** One progress line, e.g. "resnet50 batch 1 on ref: measure 3/5: 3712.4 ms". */
export function formatProgress(label: string, p: BenchProgress): string {
  return `${label}: ${p.phase} ${p.iteration}${p.total === null ? '' : `/${p.total}`}: ${p.ms.toFixed(1)} ms`;
}

/** Images per second and GFLOP/s (2 × multiply-accumulates of the whole batch / median time). */
export function throughput(batch: number, totalMacs: number, medianMs: number): { imagesPerSec: number; gflops: number } {
  return { imagesPerSec: (batch * 1000) / medianMs, gflops: (2 * totalMacs) / (medianMs * 1e6) };
}

/**
 * What a backend may say beyond the Backend interface: the instruction set its kernels were
 * built for (native: `isa()`, e.g. 'avx512f'; wasm: an `isa` string, e.g. 'wasm-simd128').
 */
interface BackendIsa {
  isa?: string | (() => string);
}

/** The instruction set of the backend's kernels as it reports it; null for one that does not say (ref). */
export function backendIsa(backend: Backend): string | null {
  const isa = (backend as Backend & BackendIsa).isa;
  const value = typeof isa === 'function' ? isa.call(backend) : isa;
  return typeof value === 'string' ? value : null;
}

/**
 * Selects a backend for the ops layer and asks it for `threads` threads. `threads` is the count
 * it then reports (getThreads(): a pool may clamp, the reference stays at 1);
 * `threadsSupported` is false when more than one was asked and it runs one all the same.
 * `isa`: see backendIsa.
 */
export function useBackend(name: string, threads: number): { backend: Backend; threads: number; threadsSupported: boolean; isa: string | null } {
  const backend = setBackend(name);
  backend.setThreads(threads);
  const actual = backend.getThreads();
  return { backend, threads: actual, threadsSupported: actual > 1 || threads <= 1, isa: backendIsa(backend) };
}

export interface BenchmarkOptions extends TimingOptions {
  arch: string;
  batch?: number;
  /** Threads to ask of the backend (default 1); only backends with thread control take it (see useBackend). */
  threads?: number;
  /** Backend name as registered in src/backends, or 'auto' (default 'ref'). */
  backend?: string;
  /** [C, H, W] of one image (default [3, 224, 224]). */
  input?: readonly [number, number, number];
  /** Builder options (numClasses, groups…); the seed defaults to 0. */
  model?: BuilderOptions;
  /** Weights to load; timing does not depend on them, the seeded initialisation serves otherwise. */
  stateDict?: StateDict;
  /**
   * Time training steps instead of inference: train mode, forward, cross-entropy against
   * seeded class indices, backward, and an SGD step (momentum 0.9, weight decay 1e-4).
   */
  train?: boolean;
}

export interface BenchmarkResult {
  arch: string;
  batch: number;
  /** Threads the backend ran with: as it reports them after the request, else 1. */
  threads: number;
  /** False when the backend has no thread control and ran single-threaded whatever was asked. */
  threadsSupported: boolean;
  backend: string;
  /**
   * The instruction set the backend's kernels ran, as it reports it: 'avx512…', 'avx2-fma' or
   * 'scalar' (native: the best the CPU has, or the one RESNET_NATIVE_ISA forces), 'wasm-simd128…'
   * (wasm); null where the backend does not say (ref).
   */
  isa: string | null;
  input: [number, number, number];
  iterations: number;
  medianMs: number;
  minMs: number;
  imagesPerSec: number;
  /**
   * 2 × multiply-accumulates per forward pass / median time, in 10⁹ per second; for training
   * steps 3 × that (the backward's data and weight gradients cost about two forwards).
   */
  gflops: number;
  /** 'inference' (eval-mode forward passes) or 'train' (whole training steps). */
  mode: 'inference' | 'train';
  /** Process CPU time / wall time while timing (see Timing.cpuCores). */
  cpuCores: number;
}

/** Any tensor of the shape, with values in [-1, 1) from a fixed seed: timing ignores them. */
export function benchmarkInput(shape: readonly number[], seed = 0): Tensor {
  const x = Tensor.zeros(shape);
  const data = x.f32;
  const generator = new Generator(seed);
  for (let i = 0; i < data.length; i++) data[i] = generator.uniform(-1, 1);
  return x;
}

/**
 * One training step of `model` on the batch `x` as a training loop runs it, for timing: train
 * mode, cross-entropy against seeded class indices, zeroGrad, backward, an SGD step (momentum
 * 0.9, weight decay 1e-4). Returns the step; each call returns its loss.
 */
export function trainingStep(model: AnyResNet, x: Tensor): () => number {
  model.train();
  const batch = x.shape[0];
  const classes = model.fc.outFeatures;
  const generator = new Generator(1);
  const target = new Tensor(BigInt64Array.from({ length: batch }, () => BigInt(Math.floor(generator.random() * classes))), [batch]);
  const optimizer = new SGD(model.parameters(), { lr: 1e-3, momentum: 0.9, weightDecay: 1e-4 });
  return () => {
    const loss = F.crossEntropy(model.call(x), target);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    return loss.item();
  };
}

/**
 * Times eval-mode forward passes of `arch` on a backend. Selects that backend for the ops layer
 * while it runs and restores the previous one after.
 */
export async function benchmarkModel(options: BenchmarkOptions): Promise<BenchmarkResult> {
  const batch = options.batch ?? 1;
  const input = [...(options.input ?? [3, 224, 224])] as [number, number, number];
  const backendName = options.backend ?? 'ref';

  // conv1 takes the input's channels (a grey 1×28×28 input builds a 1-channel model) unless told otherwise.
  const model = getModel(options.arch, { seed: 0, inChannels: input[0], ...options.model });
  if (options.stateDict) model.loadStateDict(options.stateDict);
  model.eval();
  const inputShape = [batch, ...input];
  const { totalMacs } = summarize(model, inputShape); // also rejects inputs the model cannot take
  if (options.train && batch < 2) throw new RangeError('a training step needs a batch of at least 2 (BatchNorm in train mode)');

  const previous = getBackend().name;
  try {
    const { backend, threads, threadsSupported, isa } = useBackend(backendName, options.threads ?? 1);
    const x = benchmarkInput(inputShape);
    const run = options.train ? trainingStep(model, x) : () => noGrad(() => model.call(x));
    const timing = await timeRuns(run, options);
    return {
      arch: options.arch,
      batch,
      threads,
      threadsSupported,
      backend: backend.name, // what 'auto' resolved to
      isa,
      input,
      iterations: timing.timesMs.length,
      medianMs: timing.medianMs,
      minMs: timing.minMs,
      ...throughput(batch, options.train ? 3 * totalMacs : totalMacs, timing.medianMs),
      mode: options.train ? 'train' : 'inference',
      cpuCores: timing.cpuCores,
    };
  } finally {
    setBackend(previous);
  }
}
