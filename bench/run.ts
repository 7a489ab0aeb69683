// `npm run bench`: resnet-ts against onnxruntime-node, onnxruntime-web, TensorFlow.js (wasm)
// and PyTorch (where $PYTHON, default /usr/bin/python3, has torch) on this machine, with the
// same weights, and BENCHMARKS.md written from what was measured. Each engine runs in a child
// process of its own (bench/worker.ts; PyTorch in bench/torch_worker.py); every engine's logits
// are checked against ours before it is timed. The engines of one model and batch are timed in
// turn, round after round (a slice of runs each), so that a machine whose speed drifts (one
// shared with other work) drifts under all of them alike. Then the cold starts: a fresh process
// per engine that loads the model from its file and runs batch 1 (bench/cold_start.ts), timed
// to its first output, with its peak memory. Last, the browser row (bench/browser.ts): our wasm
// backend and onnxruntime-web in the same Chromium page at batch 1 (skipped, with the reason in
// the report, where Chromium is missing); `--engines browser` runs that row alone.
//
//   node dist/bench/run.js [--arch resnet18,resnet50] [--batch 1,8] [--threads 2]
//                          [--engines onnxruntime-node,...,browser] [--min-time-ms 3000] [--rounds 4]
//                          [--cold-runs 5] [--native-isa avx512,avx2] [--out BENCHMARKS.md]
//                          [--quiet-wait-s 20] [--max-time-ms 20000] [--timeout-s 240]
//                          [--train-cases resnet20:1x28x28:128,...|none] [--train-rounds 2]
//                          [--finetune-epochs 15] [--finetune-seeds 0,1] [--finetune-dir DIR] [--skip-finetune]
//
// The training section times whole training steps of resnet-ts and PyTorch (bench/train.ts);
// with --engines it runs only when the list names 'train'. The fine-tuning section
// (bench/finetune.ts: pretraining, then fine-tuning in both engines, the accuracies they reach)
// runs unless --skip-finetune, and with --engines when the list names 'finetune';
// `--engines finetune`, `--engines train` or `--engines train,finetune` alone measure only those
// sections and merge them into the existing --out file, leaving the others as they were.
//
// --native-isa times the native backend once per ISA listed (engines 'resnet-ts/native@<isa>',
// each worker started with RESNET_NATIVE_ISA=<isa>); without it, native runs what the backend
// picks (the best the CPU runs, or what RESNET_NATIVE_ISA in this environment says).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, totalmem, type as osType } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { listBackends } from '../src/backends/index.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { getModel } from '../src/models/builders.js';
import { median, throughput } from '../src/tools/bench.js';
import { summarize } from '../src/tools/summary.js';
import { browserSection, measureInBrowser, type BrowserResult } from './browser.js';
import { parseOurs } from './engine_setup.js';
import { OURS_PREFIX, PEERS, modelFile, packageVersion, referencePath, relativeDifference } from './engines.js';
import { cpuDescription, gitDescription, waitForQuiet } from './system.js';
import { DEFAULT_FINETUNE, WHOLE_RUN, defaultWorkDir, fineTuningSection, measureFineTuning, mergeSection, runFineTuningAlone, type FineTuneConfig, type FineTuneResult } from './finetune.js';
import { DEFAULT_TRAIN_CASES, fromScratchSection, measureTraining, parseTrainCases, trainingSection, type TrainRow } from './train.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const workerPath = fileURLToPath(new URL('./worker.js', import.meta.url));
const coldStartPath = fileURLToPath(new URL('./cold_start.js', import.meta.url));
const torchWorkerPath = join(repoRoot, 'bench', 'torch_worker.py');
/** The Python with torch and torchvision: exports the models (export_onnx.py) and runs PyTorch. */
const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';
const modelsDir = join(repoRoot, 'bench', 'models');
const INPUT: [number, number, number] = [3, 224, 224];
const TOLERANCE = 1e-3;
/** Wait before each measurement until other processes keep fewer cores than this busy… */
const QUIET_CORES = 0.3;

const { values: args } = parseArgs({
  options: {
    arch: { type: 'string', default: 'resnet18,resnet50' },
    batch: { type: 'string', default: '1,8' },
    threads: { type: 'string', default: '2' },
    engines: { type: 'string' },
    'min-time-ms': { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '4' }, // slices per engine, taken in turn with the others
    'cold-runs': { type: 'string', default: '5' }, // cold starts per engine, taken in turn
    'native-isa': { type: 'string' }, // RESNET_NATIVE_ISA values: one native engine each
    'quiet-wait-s': { type: 'string', default: '20' }, // …but no longer than this
    'max-time-ms': { type: 'string', default: '20000' }, // fewer runs for engines slower than that
    'timeout-s': { type: 'string', default: '240' }, // a worker still running then is stopped
    out: { type: 'string', default: join(repoRoot, 'BENCHMARKS.md') },
    'train-cases': { type: 'string' }, // arch:CxHxW:batch,… or none (default: DEFAULT_TRAIN_CASES)
    'train-rounds': { type: 'string', default: '2' },
    'finetune-epochs': { type: 'string', default: String(DEFAULT_FINETUNE.epochs) },
    'finetune-seeds': { type: 'string', default: DEFAULT_FINETUNE.seeds.join(',') },
    'finetune-dir': { type: 'string' }, // scratch folder for its data and runs (default: under os.tmpdir())
    'skip-finetune': { type: 'boolean', default: false },
  },
});
const archs = args.arch.split(',');
const batches = args.batch.split(',').map(Number);
const threads = Number(args.threads);
const minTimeMs = Number(args['min-time-ms']);
const quietWaitMs = Number(args['quiet-wait-s']) * 1000;
const maxTimeMs = Number(args['max-time-ms']);
const workerTimeoutMs = Number(args['timeout-s']) * 1000;
const rounds = Math.max(1, Number(args.rounds));
const coldRuns = Math.max(1, Number(args['cold-runs']));

const log = (line: string) => process.stderr.write(`${line}\n`);

// ---------------------------------------------------------------- models

function exportMissingModels(): Record<string, unknown> {
  const missing = archs.filter((a) => ['onnx', 'safetensors', 'pth', 'check.safetensors'].some((k) => !existsSync(modelFile(modelsDir, a, k))));
  if (missing.length) {
    log(`exporting ${missing.join(', ')} with ${PYTHON} bench/export_onnx.py (torch, torchvision)…`);
    const r = spawnSync(PYTHON, [join(repoRoot, 'bench', 'export_onnx.py'), '--out', modelsDir, '--arch', ...missing], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`bench/export_onnx.py failed (${r.error?.message ?? `exit ${r.status}`})`);
  }
  const info = join(modelsDir, 'export.json');
  return existsSync(info) ? (JSON.parse(readFileSync(info, 'utf8')) as Record<string, unknown>) : {};
}

/** Why PyTorch cannot be a peer here (PYTHON lacks torch or torchvision), or null when it can. */
function torchMissing(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  if (r.status === 0) return null;
  if (r.error) return `${PYTHON} did not run (${r.error.message})`;
  return `${PYTHON} cannot import torch and torchvision (${r.stderr.trim().split('\n').pop()})`;
}

// ---------------------------------------------------------------- workers

/**
 * How to start an engine's worker: Node on a script of bench/ (worker.js by default), or Python
 * on torch_worker.py for PyTorch; with RESNET_NATIVE_ISA set for 'resnet-ts/native@<isa>'.
 */
function workerCommand(engine: string, nodeScript = workerPath): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  const forcedIsa = parseOurs(engine)?.forcedIsa;
  const env = forcedIsa ? { ...process.env, RESNET_NATIVE_ISA: forcedIsa } : process.env;
  return engine === 'pytorch' ? { command: PYTHON, args: [torchWorkerPath], env } : { command: process.execPath, args: [nodeScript], env };
}

interface Row {
  engine: string;
  arch: string;
  batch: number;
  threads?: number;
  error?: string;
  relDiff?: number;
  relDiffVsTorch?: number;
  medianMs?: number;
  minMs?: number;
  imagesPerSec?: number;
  gflops?: number;
  iterations?: number;
  cpuCores?: number;
  otherLoadCores?: number | null;
  osThreadsAdded?: number | null;
  details?: Record<string, unknown>;
  quietBefore?: number | null;
}

/** Runs one task in a Node worker (bench/worker.ts); its last stdout line is the JSON result (stderr passes through). */
function runWorker(task: object): Promise<Row> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [workerPath, JSON.stringify(task)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, workerTimeoutMs);
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      const t = task as Row;
      if (timedOut) return resolve({ engine: t.engine, arch: t.arch, batch: t.batch, error: `stopped after ${workerTimeoutMs / 1000} s (too slow for this run)` });
      if (!line) return resolve({ engine: t.engine, arch: t.arch, batch: t.batch, error: `worker exited ${code} without a result` });
      resolve(JSON.parse(line) as Row);
    });
  });
}

/** A worker in 'serve' mode (bench/worker.ts, or torch_worker.py for PyTorch): one JSON line per answer on its stdout. */
class ServedEngine {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  #waiting: ((line: string | null) => void) | null = null;
  #closed = false;
  #buffer = '';

  constructor(task: { engine: string; [field: string]: unknown }) {
    const { command, args, env } = workerCommand(task.engine);
    this.#child = spawn(command, [...args, JSON.stringify(task)], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    this.#child.stdout!.on('data', (chunk: Buffer) => {
      this.#buffer += chunk.toString();
      let newline: number;
      while ((newline = this.#buffer.indexOf('\n')) >= 0) {
        const line = this.#buffer.slice(0, newline).trim();
        this.#buffer = this.#buffer.slice(newline + 1);
        if (line.startsWith('{')) this.#push(line);
      }
    });
    this.#child.on('close', () => {
      this.#closed = true;
      this.#push(null);
    });
  }

  #push(line: string | null): void {
    if (this.#waiting) {
      const wake = this.#waiting;
      this.#waiting = null;
      wake(line);
    } else if (line !== null) {
      this.#lines.push(line);
    }
  }

  /** The next JSON answer; null when the worker exited or did not answer within the timeout. */
  async next(): Promise<Record<string, unknown> | null> {
    if (this.#lines.length) return JSON.parse(this.#lines.shift()!) as Record<string, unknown>;
    if (this.#closed) return null;
    const line = await new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting = null;
        this.kill();
        resolve(null);
      }, workerTimeoutMs);
      this.#waiting = (l) => {
        clearTimeout(timer);
        resolve(l);
      };
    });
    return line === null ? null : (JSON.parse(line) as Record<string, unknown>);
  }

  send(command: object): void {
    if (!this.#closed) this.#child.stdin!.write(`${JSON.stringify(command)}\n`);
  }

  kill(): void {
    this.#child.kill('SIGKILL');
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Times the engines of one model and batch in turn: each is loaded and checked in a worker of
 * its own, then every round gives each engine one slice of runs (minTimeMs / rounds, at least
 * ceil(5 / rounds) runs), the order rotating from round to round. Median and min over all of an
 * engine's runs.
 */
async function measureInTurn(tasks: { engine: string; arch: string; batch: number }[], label: string): Promise<Row[]> {
  const rows: Row[] = tasks.map((t) => ({ engine: t.engine, arch: t.arch, batch: t.batch }));
  const live: { index: number; worker: ServedEngine; times: number[]; cpu: number; other: number; wall: number }[] = [];
  for (const [index, t] of tasks.entries()) {
    log(`${label}: loading and checking ${t.engine}`);
    const worker = new ServedEngine({ ...common, mode: 'serve', ...t });
    const first = await worker.next();
    if (first?.ready) {
      live.push({ index, worker, times: [], cpu: 0, other: 0, wall: 0 });
      continue;
    }
    rows[index] = first ? ({ ...rows[index], ...first } as Row) : { ...rows[index], error: `worker exited or stopped (${workerTimeoutMs / 1000} s) before it was ready` };
    log(`  FAILED: ${rows[index].error?.split('\n')[0]}`);
    worker.kill();
  }
  const quietBefore = await waitForQuiet(QUIET_CORES, quietWaitMs, (load) => log(`  waiting for a quiet machine (${load.toFixed(2)} cores busy)…`));
  const slice = { minTimeMs: minTimeMs / rounds, maxTimeMs: maxTimeMs / rounds, minIterations: Math.ceil(5 / rounds) };
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < live.length; k++) {
      const e = live[(k + round) % live.length];
      if (rows[e.index].error) continue;
      log(`${label}, round ${round + 1}/${rounds}: ${tasks[e.index].engine}`);
      await sleep(100); // the previous engine's threads settle (onnxruntime spins a while after a run)
      e.worker.send(slice);
      const answer = await e.worker.next();
      if (!answer?.slice) {
        rows[e.index].error = (answer?.error as string | undefined) ?? `stopped: no answer within ${workerTimeoutMs / 1000} s`;
        log(`  FAILED: ${rows[e.index].error!.split('\n')[0]}`);
        e.worker.kill();
        continue;
      }
      const times = answer.timesMs as number[];
      const wall = times.reduce((a, b) => a + b, 0);
      e.times.push(...times);
      e.cpu += (answer.cpuCores as number) * wall;
      e.other += ((answer.otherLoadCores as number | null) ?? 0) * wall;
      e.wall += wall;
    }
  }
  for (const e of live) {
    if (rows[e.index].error) continue;
    e.worker.send({ done: true });
    const final = await e.worker.next();
    if (!final || final.error) {
      rows[e.index].error = (final?.error as string | undefined) ?? 'worker exited without a result';
      continue;
    }
    const medianMs = median(e.times);
    const minMs = Math.min(...e.times);
    const t = tasks[e.index];
    rows[e.index] = {
      ...(final as unknown as Row),
      medianMs,
      minMs,
      ...throughput(t.batch, summarize(getModel(t.arch), [t.batch, ...INPUT]).totalMacs, medianMs),
      iterations: e.times.length,
      cpuCores: e.cpu / e.wall,
      otherLoadCores: e.other / e.wall,
      quietBefore,
    };
    log(`  ${t.engine}: median ${medianMs.toFixed(1)} ms, min ${minMs.toFixed(1)} ms over ${e.times.length} runs, ${(e.cpu / e.wall).toFixed(2)} cores busy, other load ${(e.other / e.wall).toFixed(2)}`);
  }
  return rows;
}

const disturbed = (row: Row) => (row.otherLoadCores ?? 0) > QUIET_CORES;

// ---------------------------------------------------------------- cold starts

interface ColdStartRow {
  engine: string;
  arch: string;
  error?: string;
  /** Each run: ms from just before the spawn to the output line, and the process's peak RSS. */
  runs: { ms: number; maxRssKiB: number }[];
  medianMs?: number;
  minMs?: number;
  /** Median over the runs. */
  maxRssKiB?: number;
  /** Largest over the runs. */
  relDiff?: number;
  /** The ISA our backend's kernels ran (ours only). */
  isa?: string | null;
}

/**
 * One cold start of `engine` (bench/cold_start.ts, torch_worker.py's 'coldstart'): a fresh process
 * that loads `arch` from its file and runs `imagePath` once; timed from just before the spawn to
 * the arrival of its output line, whose logits must match `expected` (ours).
 */
function coldStartOnce(engine: string, arch: string, imagePath: string, expected: Float32Array): Promise<{ ms: number; maxRssKiB: number; relDiff: number; isa?: string | null } | { error: string }> {
  const { command, args, env } = workerCommand(engine, coldStartPath);
  const task = { mode: 'coldstart', engine, arch, threads, modelsDir, input: INPUT, imagePath };
  return new Promise((resolve) => {
    const start = performance.now();
    const child = spawn(command, [...args, JSON.stringify(task)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let ms = NaN;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, workerTimeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (Number.isNaN(ms) && out.includes('\n')) ms = performance.now() - start;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (timedOut) return resolve({ error: `stopped after ${workerTimeoutMs / 1000} s` });
      if (!line) return resolve({ error: `exited ${code} without a result` });
      const answer = JSON.parse(line) as { logits?: number[]; maxRssKiB?: number; isa?: string | null; error?: string };
      if (answer.error || !answer.logits) return resolve({ error: answer.error ?? 'no logits' });
      resolve({ ms, maxRssKiB: answer.maxRssKiB!, relDiff: relativeDifference(answer.logits, expected), isa: answer.isa });
    });
  });
}

/** Cold starts of every engine, `coldRuns` each, the engines taken in turn (the order rotating each round). */
async function measureColdStarts(engines: string[], arch: string): Promise<ColdStartRow[]> {
  // The input: the check input's first image; ours at it: the reference logits' first row.
  const imagePath = modelFile(modelsDir, arch, 'image.f32');
  const image = readSafetensors(readFileSync(modelFile(modelsDir, arch, 'check.safetensors'))).get('input')!;
  const imageSize = INPUT.reduce((a, b) => a * b);
  writeFileSync(imagePath, image.f32.subarray(0, imageSize));
  const logits = readSafetensors(readFileSync(referencePath(modelsDir, arch))).get('logits')!;
  const expected = logits.f32.subarray(0, logits.shape[1]);

  const rows: ColdStartRow[] = engines.map((engine) => ({ engine, arch, runs: [], relDiff: 0 }));
  await waitForQuiet(QUIET_CORES, quietWaitMs, (load) => log(`  waiting for a quiet machine (${load.toFixed(2)} cores busy)…`));
  for (let round = 0; round < coldRuns; round++) {
    for (let k = 0; k < rows.length; k++) {
      const row = rows[(k + round) % rows.length];
      if (row.error) continue;
      const result = await coldStartOnce(row.engine, arch, imagePath, expected);
      if ('error' in result) {
        row.error = result.error;
      } else if (!(result.relDiff < TOLERANCE)) {
        row.error = `output differs from ours: max |Δ| / max |logit| = ${result.relDiff.toExponential(2)} ≥ ${TOLERANCE}`;
      } else {
        row.runs.push({ ms: result.ms, maxRssKiB: result.maxRssKiB });
        row.relDiff = Math.max(row.relDiff!, result.relDiff);
        row.isa = result.isa;
        log(`cold start ${round + 1}/${coldRuns}: ${arch} on ${row.engine}: ${result.ms.toFixed(0)} ms to the first output, peak RSS ${(result.maxRssKiB / 1024).toFixed(0)} MiB`);
        continue;
      }
      log(`cold start ${round + 1}/${coldRuns}: ${arch} on ${row.engine}: FAILED: ${row.error.split('\n')[0]}`);
    }
  }
  for (const row of rows) {
    if (row.error) continue;
    row.medianMs = median(row.runs.map((r) => r.ms));
    row.minMs = Math.min(...row.runs.map((r) => r.ms));
    row.maxRssKiB = median(row.runs.map((r) => r.maxRssKiB));
  }
  return rows;
}

// ---------------------------------------------------------------- report

const fmt = (x: number | null | undefined, digits: number) => (x === null || x === undefined ? '—' : x.toFixed(digits));

/** 'resnet-ts/native' → '**resnet-ts** (native, avx2-fma)' with the ISA its kernels ran, where known. */
function engineLabel(engine: string, isa?: unknown): string {
  if (!engine.startsWith(OURS_PREFIX)) return engine;
  return `**resnet-ts** (${engine.slice(OURS_PREFIX.length)}${typeof isa === 'string' ? `, ${isa}` : ''})`;
}

/** Which ISA each of our backends ran (as the backends report it, from the timed rows) and how native's was chosen. */
function kernelIsas(rows: Row[]): string {
  const byBackend = new Map<string, Record<string, unknown>>();
  for (const r of rows) {
    if (r.engine.startsWith(OURS_PREFIX) && r.details?.isa && !byBackend.has(r.engine)) byBackend.set(r.engine, r.details);
  }
  const ran = [...byBackend].map(([engine, d]) => `${engine.slice(OURS_PREFIX.length)} \`${d.isa}\`${Array.isArray(d.isas) ? ` (this CPU runs: ${d.isas.join(', ')})` : ''}`);
  const forced = process.env.RESNET_NATIVE_ISA;
  const choice = nativeIsas.length
    ? `native@<isa> rows ran with RESNET_NATIVE_ISA=<isa> (--native-isa ${nativeIsas.join(',')})`
    : forced
      ? `native's forced by RESNET_NATIVE_ISA=${forced}`
      : "native's chosen at run time (RESNET_NATIVE_ISA unset: the best this CPU runs)";
  // Two forced variants that report the same kernels: the backend did not take RESNET_NATIVE_ISA.
  const forcedBy = new Map<unknown, string[]>();
  for (const [engine, d] of byBackend) if (parseOurs(engine)?.forcedIsa) forcedBy.set(d.isa, [...(forcedBy.get(d.isa) ?? []), engine.slice(OURS_PREFIX.length)]);
  const ignored = [...forcedBy].filter(([, engines]) => engines.length > 1).map(([isa, engines]) => `${engines.join(' and ')} ran the same kernels, \`${isa}\`: RESNET_NATIVE_ISA had no effect there`);
  return `${ran.length ? ran.join('; ') : 'none timed'}; ${choice}${ignored.map((line) => `. **${line}**`).join('')}`;
}

function describeThreads(row: Row): string {
  const d = row.details ?? {};
  const observed = `${fmt(row.cpuCores, 2)} cores busy on average, ${row.osThreadsAdded ?? '?'} OS threads added by the engine`;
  switch (row.engine) {
    case 'onnxruntime-node':
      return `intraOpNumThreads ${d.intraOpNumThreads}, interOpNumThreads ${d.interOpNumThreads}, ${d.executionMode}, CPU EP; ${observed}`;
    case 'onnxruntime-web':
      return `env.wasm.numThreads ${d.requestedNumThreads} requested, ${d.numThreadsAfterInit} after init, proxy ${d.proxy}; ${observed}`;
    case 'tfjs-wasm':
      return `setThreadsCount(${d.requestedThreads}) asked; WASM_HAS_MULTITHREAD_SUPPORT ${d.multithreadSupport}, getThreadsCount() ${d.threadsCount}, SIMD ${d.simdSupport}; ${observed}`;
    case 'pytorch':
      return `torch.set_num_threads(${threads}) → get_num_threads() ${d.numThreads}, ${d.interopThreads} inter-op thread(s); ${d.module}; ATen CPU capability ${d.atenCpuCapability}, oneDNN ${d.mkldnn ? 'on' : 'off'}; ${observed}`;
    default:
      return `${d.threadsSupported ? `${threads} asked, the backend reports ${d.threads}` : 'no thread control on this backend: 1 thread'}${d.isa ? `; kernels ${d.isa}` : ''}; ${observed}`;
  }
}

interface Measured {
  rows: Row[];
  references: Row[];
  coldRows: ColdStartRow[];
  trainRows: TrainRow[];
  /** The fine-tuning section; null when it was not asked for. */
  fineTune: FineTuneResult | null;
  /** Peak RSS of a bare `node -e ''`. */
  baselineRssKiB: number;
  exportInfo: Record<string, unknown>;
  /** Why PyTorch was not run; null when it was (or was not asked for). */
  pytorchSkipped: string | null;
  /** The browser row; null when it was not asked for. */
  browser: BrowserResult | null;
  load: { start: number[]; end: number[] };
  started: Date;
  seconds: number;
}

function report({ rows, references, coldRows, trainRows, fineTune, baselineRssKiB, exportInfo, pytorchSkipped, browser, load, started, seconds }: Measured): string {
  const timed = rows.filter((r) => r.medianMs !== undefined);
  const ours = timed.filter((r) => r.engine.startsWith(OURS_PREFIX));
  const versions = ['onnxruntime-node', 'onnxruntime-web', 'onnxruntime-common', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', 'typescript']
    .map((p) => `${p} ${packageVersion(p) ?? 'not installed'}`)
    .join(', ');
  const pytorch = timed.find((r) => r.engine === 'pytorch')?.details;
  const L: string[] = [];
  L.push('# Benchmarks', '');
  L.push(`Written by \`npm run bench\` (bench/run.ts) on ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, in ${Math.round(seconds)} s. ${WHOLE_RUN} Regenerate with \`npm run bench\`.`, '');
  L.push('## Machine', '');
  L.push(`- CPU: ${cpuDescription()}; ${availableParallelism()} logical cores (os.availableParallelism)`);
  L.push(`- resnet-ts kernels: ${kernelIsas(rows)}`);
  L.push(`- Memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB; ${osType()} ${release()}`);
  L.push(`- Node.js ${process.version}; ${versions}; ${pytorch ? `PyTorch ${pytorch.version}, torchvision ${pytorch.torchvision} (${PYTHON})` : pytorchSkipped ? `PyTorch not run: ${pytorchSkipped}` : 'PyTorch not timed'}`);
  L.push(`- resnet-ts ${gitDescription(repoRoot)}; backends registered: ${listBackends().filter((b) => b !== 'meta').join(', ')}`);
  L.push(`- Load average (1, 5, 15 min) at start ${load.start.map((x) => x.toFixed(2)).join(', ')}, at end ${load.end.map((x) => x.toFixed(2)).join(', ')}`);
  L.push('');
  L.push('## Method', '');
  L.push(`- Weights: torchvision's ${archs.join(' and ')} with seeded weights (torch ${exportInfo.torch ?? '?'}, torchvision ${exportInfo.torchvision ?? '?'}, seed ${exportInfo.seed ?? '?'}), exported by \`bench/export_onnx.py\` as ONNX (opset ${exportInfo.opset ?? '?'}, dynamic batch) for onnxruntime, as safetensors for resnet-ts and the TensorFlow.js graph (bench/tfjs_resnet.ts: NHWC, BatchNorm folded), and as a torch.save \`.pth\` for PyTorch (bench/torch_worker.py: torchvision's model, traced and frozen by TorchScript, \`torch.jit.trace\` + \`torch.jit.freeze\`, eval, no_grad, \`torch.set_num_threads(${threads})\`) and the cold starts.`);
  L.push(`- Check before timing: each engine's logits at a 2×3×224×224 input are compared with ours (reference backend); max |Δ| / max |logit| must be below ${TOLERANCE}. Ours against torch's logits for the same input: ${references.map((r) => `${r.arch} ${r.error ? `FAILED (${r.error.split('\n')[0]})` : r.relDiffVsTorch!.toExponential(1)}`).join(', ')}.`);
  L.push(`- Input ${INPUT.join('×')} per image, float32 NCHW (NHWC for tfjs, converted before timing). Threads asked: ${threads}. Each engine runs in a process of its own: load, check, warm-up (2 runs). The engines of one model and batch are then timed in turn, in ${rounds} rounds (the order rotating each round): a slice of at least ${Math.ceil(5 / rounds)} runs and ${Math.round(minTimeMs / rounds)} ms each per round (fewer, at least 1, for an engine whose runs pass ${maxTimeMs / rounds / 1000} s in a slice), after one untimed run that brings the engine's weights back into the caches (skipped for runs over 0.5 s). So every engine sees the same machine, even when its speed drifts (this one is shared with other work). Median and min over all of an engine's timed runs; images/s = batch / median; GFLOP/s = 2 × our summary's multiply-accumulates (\`resnet summary\`) / median.`);
  L.push(`- "cores busy" = the process's CPU time / wall time while timing (all its threads). "other load" = cores kept busy by other processes on the machine meanwhile (/proc/stat; the engines waiting for their turn included), averaged over the engine's slices; before the rounds the run waits (up to ${quietWaitMs / 1000} s) for other load below ${QUIET_CORES} cores. Rows marked "disturbed" shared the CPUs with other work and are slower than this machine can do.`);
  L.push('');
  L.push(`## Results (${threads} threads asked)`, '');
  L.push('| model | batch | engine | median ms | min ms | images/s | GFLOP/s | cores busy | other load | runs | max rel. diff vs ours |');
  L.push('|:---|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    if (r.error) {
      L.push(`| ${r.arch} | ${r.batch} | ${engineLabel(r.engine)} | not timed: ${r.error.split('\n')[0].replace(/\|/g, '\\|')} | | | | | | | ${fmt(r.relDiff, 7)} |`);
    } else {
      L.push(`| ${r.arch} | ${r.batch} | ${engineLabel(r.engine, r.details?.isa)} | ${fmt(r.medianMs, 1)} | ${fmt(r.minMs, 1)} | ${fmt(r.imagesPerSec, 2)} | ${fmt(r.gflops, 1)} | ${fmt(r.cpuCores, 2)} | ${fmt(r.otherLoadCores, 2)}${disturbed(r) ? ' (disturbed)' : ''} | ${r.iterations} | ${r.relDiff?.toExponential(1)} |`);
    }
  }
  L.push('');
  L.push('## resnet-ts ÷ peer', '');
  L.push('Median time of resnet-ts divided by the peer\'s, same model and batch: below 1 means resnet-ts is faster.', '');
  L.push(`| model | batch | resnet-ts backend | ${PEERS.map((p) => `÷ ${p}`).join(' | ')} |`);
  L.push(`|:---|---:|:---|${PEERS.map(() => '---:').join('|')}|`);
  for (const o of ours) {
    const ratios = PEERS.map((p) => {
      const peer = timed.find((r) => r.engine === p && r.arch === o.arch && r.batch === o.batch);
      return peer ? (o.medianMs! / peer.medianMs!).toFixed(2) : '—';
    });
    L.push(`| ${o.arch} | ${o.batch} | ${o.engine.slice(OURS_PREFIX.length)}${o.details?.isa ? ` (${o.details.isa})` : ''} | ${ratios.join(' | ')} |`);
  }
  if (!ours.length) L.push(`| — | | no resnet-ts row was timed |${PEERS.map(() => ' |').join('')}`);
  if (pytorchSkipped) L.push('', `PyTorch was not run: ${pytorchSkipped}.`);
  L.push('');
  L.push('## Threads: what actually ran', '');
  const seen = new Set<string>();
  for (const r of timed) {
    if (seen.has(r.engine)) continue;
    seen.add(r.engine);
    const same = timed.filter((t) => t.engine === r.engine).map((t) => fmt(t.cpuCores, 2));
    L.push(`- ${engineLabel(r.engine)}: ${describeThreads(r)} (first row; cores busy across its rows: ${same.join(', ')}).`);
  }
  L.push('');
  if (browser) L.push(...browserSection(browser, threads, rounds));
  L.push(...coldStartSection(coldRows, baselineRssKiB));
  if (trainRows.length) L.push(...trainingSection(trainRows, threads, pytorchSkipped ?? torchMissing()), ...scratchSection());
  if (fineTune) L.push(...fineTuningSection(fineTune, `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`));
  return L.join('\n');
}

/** The cold starts: time to the first output and peak memory of a fresh process, ours ÷ onnxruntime-node. */
function coldStartSection(coldRows: ColdStartRow[], baselineRssKiB: number): string[] {
  const arch = coldRows[0]?.arch ?? 'resnet50';
  const L = ['## Cold start and peak memory', ''];
  L.push(`A fresh process that loads ${arch} from its file and runs it once at batch 1 (the check input's first image), as a user's script does: resnet-ts from \`${arch}.pth\` through the package's entry point (\`getModel\` with \`weights\`, bench/cold_start.ts); onnxruntime-node from \`${arch}.onnx\` (the timed rows' session options); PyTorch from \`${arch}.pth\` (\`import torch, torchvision\`, the eager model, \`load_state_dict\`, no_grad). Time: from just before the process is spawned to the arrival of its output line (whose logits are checked against ours). Peak memory: the process's peak RSS when it prints (VmHWM of /proc/self/status: getrusage's maxRSS would count the memory of the process that spawned it). Median (and min) over ${coldRuns} runs per engine, the engines in turn. A bare \`node -e ''\` peaks at ${(baselineRssKiB / 1024).toFixed(0)} MiB here.`, '');
  L.push('| engine | median s to first output | min s | peak RSS MiB | runs | time ÷ onnxruntime-node | memory ÷ onnxruntime-node | max rel. diff vs ours |');
  L.push('|:---|---:|---:|---:|---:|---:|---:|---:|');
  const ort = coldRows.find((r) => r.engine === 'onnxruntime-node' && !r.error);
  for (const r of coldRows) {
    if (r.error) {
      L.push(`| ${engineLabel(r.engine)} | failed: ${r.error.split('\n')[0].replace(/\|/g, '\\|')} | | | ${r.runs.length} | | | |`);
      continue;
    }
    const ratio = (a: number, b: number | undefined) => (ort && r !== ort && b !== undefined ? (a / b).toFixed(2) : '—');
    L.push(`| ${engineLabel(r.engine, r.isa)} | ${fmt(r.medianMs! / 1000, 2)} | ${fmt(r.minMs! / 1000, 2)} | ${fmt(r.maxRssKiB! / 1024, 0)} | ${r.runs.length} | ${ratio(r.medianMs!, ort?.medianMs)} | ${ratio(r.maxRssKiB!, ort?.maxRssKiB)} | ${r.relDiff!.toExponential(1)} |`);
  }
  if (!coldRows.length) L.push('| no cold start was run | | | | | | | |');
  L.push('');
  return L;
}

// ---------------------------------------------------------------- main

const engineList = args.engines?.split(',') ?? null;
const fineTuneConfig = (pythonMissing = torchMissing()): FineTuneConfig => ({
  ...DEFAULT_FINETUNE,
  epochs: Number(args['finetune-epochs']),
  seeds: args['finetune-seeds'].split(',').map(Number),
  workDir: args['finetune-dir'] ?? defaultWorkDir(),
  threads,
  python: pythonMissing ? null : PYTHON,
  pythonMissing: pythonMissing ?? undefined,
  timeoutMs: 30 * 60 * 1000,
  log,
});
/** The shipped Fashion-MNIST model's run (its log.json), reported with the training steps. */
const SHIPPED_MODEL = 'models/fashion-mnist-resnet20';
function scratchSection(): string[] {
  const logPath = join(repoRoot, SHIPPED_MODEL, 'log.json');
  return existsSync(logPath) ? fromScratchSection(logPath, SHIPPED_MODEL) : [];
}

// `--engines finetune` and/or `train`: those sections alone, each merged into the existing report
// (the other sections keep what an earlier run measured).
if (engineList?.every((e) => e === 'finetune' || e === 'train')) {
  let failed = false;
  if (engineList.includes('train')) {
    const trainRows = await measureTraining(args['train-cases'] ? parseTrainCases(args['train-cases']) : DEFAULT_TRAIN_CASES, {
      threads, backend: 'auto', python: torchMissing() ? null : PYTHON,
      rounds: Math.max(1, Number(args['train-rounds'])), minTimeMs, timeoutMs: workerTimeoutMs, log,
    });
    const existing = existsSync(args.out) ? readFileSync(args.out, 'utf8') : '# Benchmarks\n';
    const section = trainingSection(trainRows, threads, torchMissing());
    section.push(`Measured ${new Date().toISOString().slice(0, 10)} at ${gitDescription(repoRoot)} by \`node dist/bench/run.js ${process.argv.slice(2).join(' ')}\` (this section alone, merged into the report), on ${cpuDescription()}; load average then ${loadavg().map((x) => x.toFixed(2)).join(', ')}.`, '');
    const scratch = scratchSection();
    const merged = mergeSection(existing, section);
    writeFileSync(args.out, scratch.length ? mergeSection(merged, scratch) : merged);
    log(`train: merged the training sections into ${args.out}`);
    failed ||= trainRows.some((r) => r.error);
  }
  if (engineList.includes('finetune')) {
    const result = await runFineTuningAlone(fineTuneConfig(), args.out, `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`);
    failed ||= Boolean(result.skipped) || result.runs.some((r) => r.error);
  }
  process.exit(failed ? 1 : 0);
}

const started = new Date();
const load = { start: loadavg(), end: [] as number[] };
const exportInfo = exportMissingModels();
const nativeIsas = args['native-isa']?.split(',').filter(Boolean) ?? [];
// Our engines' backends: 'native' becomes 'native@<isa>' for each --native-isa.
const ourBackends = listBackends()
  .filter((b) => b !== 'meta' && b !== 'ref')
  .flatMap((b) => (b === 'native' && nativeIsas.length ? nativeIsas.map((isa) => `native@${isa}`) : [b]));
const peers: string[] = args.engines ? PEERS.filter((p) => args.engines!.split(',').includes(p)) : [...PEERS];
// --engines resnet-ts/native also selects its native@<isa> variants.
const chosen = (engine: string) => !args.engines || args.engines.split(',').some((e) => e === engine || e === engine.split('@')[0]);
const common = { threads, input: INPUT, modelsDir, warmup: 2, tolerance: TOLERANCE };

// PyTorch is a peer where PYTHON has torch; otherwise its column says why it is empty.
const pytorchSkipped = peers.includes('pytorch') ? torchMissing() : null;
if (pytorchSkipped) {
  log(`pytorch: skipped: ${pytorchSkipped}`);
  peers.splice(peers.indexOf('pytorch'), 1);
}

const plan: { engine: string; arch: string; batch: number }[] = [];
for (const arch of archs) {
  for (const batch of batches) {
    // The reference backend is the slow oracle: one row for scale, ResNet-18 at batch 1.
    const engines = [...(arch === 'resnet18' && batch === 1 ? ['ref'] : []), ...ourBackends].map((b) => OURS_PREFIX + b).filter(chosen);
    for (const engine of [...engines, ...peers]) plan.push({ engine, arch, batch });
  }
}
// Cold starts: ours on every fast backend, and the peers that load a model file in a process of their own.
const coldEngines = [...ourBackends.map((b) => OURS_PREFIX + b).filter(chosen), ...peers.filter((p) => p === 'onnxruntime-node' || p === 'pytorch')];
const coldArch = archs.includes('resnet50') ? 'resnet50' : archs[archs.length - 1];
// The browser row (batch 1 only): with every engine, or when --engines names 'browser'.
const browserChosen = (!args.engines || args.engines.split(',').includes('browser')) && batches.includes(1);

log(`plan: ${archs.length} references, ${plan.length} timed rows, ${coldEngines.length} cold-start rows${browserChosen ? `, the browser row (${archs.length} models)` : ''}`);
const references: Row[] = [];
for (const arch of archs) {
  log(`reference: our ${arch} on 'ref' at the check input`);
  const r = await runWorker({ ...common, mode: 'reference', engine: `${OURS_PREFIX}ref`, arch, batch: 2 });
  if (r.error || !(r.relDiffVsTorch! < TOLERANCE)) throw new Error(`our ${arch} does not match torch: ${r.error ?? r.relDiffVsTorch}`);
  log(`  ours vs torch: max |Δ| / max |logit| = ${r.relDiffVsTorch!.toExponential(2)}`);
  references.push(r);
}
const rows: Row[] = [];
for (const arch of archs) {
  for (const batch of batches) {
    const group = plan.filter((p) => p.arch === arch && p.batch === batch);
    if (group.length) rows.push(...(await measureInTurn(group, `${arch} batch ${batch}`)));
  }
}
const coldRows = coldEngines.length ? await measureColdStarts(coldEngines, coldArch) : [];
const browser = browserChosen
  ? await measureInBrowser({ repoRoot, modelsDir, archs, threads, input: INPUT, minTimeMs, maxTimeMs, rounds, tolerance: TOLERANCE, timeoutMs: workerTimeoutMs, log })
  : null;
if (browser?.skipped) log(`browser: skipped: ${browser.skipped}`);
// Training steps: on by default; with --engines, only when it names 'train'.
const trainChosen = !args.engines || args.engines.split(',').includes('train');
const trainCases = trainChosen ? (args['train-cases'] ? parseTrainCases(args['train-cases']) : DEFAULT_TRAIN_CASES) : [];
const trainRows = trainCases.length
  ? await measureTraining(trainCases, {
    threads, backend: 'auto', python: torchMissing() ? null : PYTHON,
    rounds: Math.max(1, Number(args['train-rounds'])), minTimeMs, timeoutMs: workerTimeoutMs, log,
  })
  : [];
// Fine-tuning: on by default; with --engines, only when it names 'finetune'.
const fineTuneChosen = !args['skip-finetune'] && (!engineList || engineList.includes('finetune'));
const fineTune = fineTuneChosen ? await measureFineTuning(fineTuneConfig()) : null;
// A bare Node's peak, measured as the cold starts measure theirs.
const systemUrl = new URL('./system.js', import.meta.url).href;
const baseline = spawnSync(process.execPath, ['--input-type=module', '-e', `import { peakRssKiB } from '${systemUrl}'; process.stdout.write(String(peakRssKiB()));`], { encoding: 'utf8' });
load.end = loadavg();

const seconds = (Date.now() - started.getTime()) / 1000;
writeFileSync(args.out, report({ rows, references, coldRows, trainRows, fineTune, baselineRssKiB: Number(baseline.stdout), exportInfo, pytorchSkipped, browser, load, started, seconds }));
writeFileSync(join(repoRoot, 'bench', 'results.json'), `${JSON.stringify({ started, references, rows, coldRows, browser, trainRows, fineTune }, null, 1)}\n`);
log(`wrote ${args.out} and bench/results.json in ${Math.round(seconds)} s`);
process.exitCode = rows.some((r) => r.error) || coldRows.some((r) => r.error) || browser?.rows.some((r) => r.error) || fineTune?.runs.some((r) => r.error) ? 1 : 0;
