// `npm run bench`: resnet-ts against onnxruntime-node, onnxruntime-web and TensorFlow.js
// (wasm) on this machine, with the same weights, and BENCHMARKS.md written from what was
// measured. Each engine runs in a child process of its own (bench/worker.ts); every engine's
// logits are checked against ours before it is timed. The engines of one model and batch are
// timed in turn, round after round (a slice of runs each), so that a machine whose speed
// drifts (one shared with other work) drifts under all of them alike.
//
//   node dist/bench/run.js [--arch resnet18,resnet50] [--batch 1,8] [--threads 2]
//                          [--engines onnxruntime-node,...] [--min-time-ms 3000] [--rounds 4]
//                          [--out BENCHMARKS.md] [--quiet-wait-s 20] [--max-time-ms 20000] [--timeout-s 240]

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem, type as osType } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { listBackends } from '../src/backends/index.js';
import { median, throughput } from '../src/tools/bench.js';
import { OURS_PREFIX, PEERS, modelFile, packageVersion } from './engines.js';
import { waitForQuiet } from './system.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const workerPath = fileURLToPath(new URL('./worker.js', import.meta.url));
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
    'quiet-wait-s': { type: 'string', default: '20' }, // …but no longer than this
    'max-time-ms': { type: 'string', default: '20000' }, // fewer runs for engines slower than that
    'timeout-s': { type: 'string', default: '240' }, // a worker still running then is stopped
    out: { type: 'string', default: join(repoRoot, 'BENCHMARKS.md') },
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

const log = (line: string) => process.stderr.write(`${line}\n`);

// ---------------------------------------------------------------- models

function exportMissingModels(): Record<string, unknown> {
  const missing = archs.filter((a) => ['onnx', 'safetensors', 'check.safetensors'].some((k) => !existsSync(modelFile(modelsDir, a, k))));
  if (missing.length) {
    const python = process.env.PYTHON ?? '/usr/bin/python3';
    log(`exporting ${missing.join(', ')} with ${python} bench/export_onnx.py (torch, torchvision)…`);
    const r = spawnSync(python, [join(repoRoot, 'bench', 'export_onnx.py'), '--out', modelsDir, '--arch', ...missing], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`bench/export_onnx.py failed (${r.error?.message ?? `exit ${r.status}`})`);
  }
  const info = join(modelsDir, 'export.json');
  return existsSync(info) ? (JSON.parse(readFileSync(info, 'utf8')) as Record<string, unknown>) : {};
}

// ---------------------------------------------------------------- workers

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
  maxRssKiB?: number;
  quietBefore?: number | null;
}

/** Runs one worker task; its last stdout line is the JSON result (stderr passes through). */
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

/** A worker in 'serve' mode: one JSON line per answer on its stdout. */
class ServedEngine {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  #waiting: ((line: string | null) => void) | null = null;
  #closed = false;
  #buffer = '';

  constructor(task: object) {
    this.#child = spawn(process.execPath, [workerPath, JSON.stringify(task)], { stdio: ['pipe', 'pipe', 'inherit'] });
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
      ...throughput(t.batch, final.totalMacs as number, medianMs),
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

/** Waits for a quiet machine, runs the task (a memory row); one that other processes disturbed is taken once more. */
async function measure(task: object, label: string): Promise<Row> {
  let best: Row | null = null;
  for (let attempt = 1; attempt <= 2; attempt++) {
    const quietBefore = await waitForQuiet(QUIET_CORES, quietWaitMs, (load) => log(`  waiting for a quiet machine (${load.toFixed(2)} cores busy)…`));
    log(attempt === 1 ? label : `${label} (again: other processes kept ${best!.otherLoadCores!.toFixed(2)} cores busy)`);
    const row: Row = { ...(await runWorker(task)), quietBefore };
    if (row.error) log(`  FAILED: ${row.error.split('\n')[0]}`);
    else if (row.medianMs !== undefined) log(`  median ${row.medianMs.toFixed(1)} ms, min ${row.minMs!.toFixed(1)} ms, ${row.cpuCores!.toFixed(2)} cores busy, other load ${fmt(row.otherLoadCores, 2)}`);
    if (!best || (!row.error && (row.otherLoadCores ?? 0) < (best.otherLoadCores ?? Infinity))) best = row;
    if (row.error || !disturbed(row)) break;
  }
  return best!;
}

// ---------------------------------------------------------------- report

const fmt = (x: number | null | undefined, digits: number) => (x === null || x === undefined ? '—' : x.toFixed(digits));

function engineLabel(engine: string): string {
  return engine.startsWith(OURS_PREFIX) ? `**resnet-ts** (${engine.slice(OURS_PREFIX.length)})` : engine;
}

function gitDescription(): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' });
  if (head.status !== 0) return 'not a git checkout';
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repoRoot, encoding: 'utf8' }).stdout.trim();
  return `commit ${head.stdout.trim()}${dirty ? ' with uncommitted changes' : ''}`;
}

/** Family, model and the SIMD extensions that matter to kernels, from /proc/cpuinfo (Linux). */
function cpuDetails(): string {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim();
    const flags = new Set((field('flags') ?? '').split(/\s+/));
    const simd = ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512_vnni'].filter((f) => flags.has(f));
    return ` (family ${field('cpu family')}, model ${field('model')}; ${simd.join(', ')}${flags.has('avx512f') ? '' : '; no AVX-512'})`;
  } catch {
    return '';
  }
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
    default:
      return `${d.threadsSupported ? `${threads} asked, the backend reports ${d.threads}` : 'no thread control on this backend: 1 thread'}; ${observed}`;
  }
}

function report(rows: Row[], references: Row[], rssRows: Row[], baselineRssKiB: number, exportInfo: Record<string, unknown>, load: { start: number[]; end: number[] }, started: Date, seconds: number): string {
  const timed = rows.filter((r) => r.medianMs !== undefined);
  const ours = timed.filter((r) => r.engine.startsWith(OURS_PREFIX));
  const versions = ['onnxruntime-node', 'onnxruntime-web', 'onnxruntime-common', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', 'typescript']
    .map((p) => `${p} ${packageVersion(p) ?? 'not installed'}`)
    .join(', ');
  const cpu = cpus()[0];
  const L: string[] = [];
  L.push('# Benchmarks', '');
  L.push(`Written by \`npm run bench\` (bench/run.ts) on ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, in ${Math.round(seconds)} s. Every figure below was measured in that run; nothing is copied from elsewhere. Regenerate with \`npm run bench\`.`, '');
  L.push('## Machine', '');
  L.push(`- CPU: ${cpu?.model ?? 'unknown'}${cpuDetails()}, ${availableParallelism()} logical cores (os.availableParallelism)`);
  L.push(`- Memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB; ${osType()} ${release()}`);
  L.push(`- Node.js ${process.version}; ${versions}`);
  L.push(`- resnet-ts ${gitDescription()}; backends registered: ${listBackends().filter((b) => b !== 'meta').join(', ')}`);
  L.push(`- Load average (1, 5, 15 min) at start ${load.start.map((x) => x.toFixed(2)).join(', ')}, at end ${load.end.map((x) => x.toFixed(2)).join(', ')}`);
  L.push('');
  L.push('## Method', '');
  L.push(`- Weights: torchvision's ${archs.join(' and ')} with seeded weights (torch ${exportInfo.torch ?? '?'}, torchvision ${exportInfo.torchvision ?? '?'}, seed ${exportInfo.seed ?? '?'}), exported by \`bench/export_onnx.py\` as ONNX (opset ${exportInfo.opset ?? '?'}, dynamic batch) for onnxruntime and as safetensors for resnet-ts and the TensorFlow.js graph (bench/tfjs_resnet.ts: NHWC, BatchNorm folded).`);
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
      L.push(`| ${r.arch} | ${r.batch} | ${engineLabel(r.engine)} | ${fmt(r.medianMs, 1)} | ${fmt(r.minMs, 1)} | ${fmt(r.imagesPerSec, 2)} | ${fmt(r.gflops, 1)} | ${fmt(r.cpuCores, 2)} | ${fmt(r.otherLoadCores, 2)}${disturbed(r) ? ' (disturbed)' : ''} | ${r.iterations} | ${r.relDiff?.toExponential(1)} |`);
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
    L.push(`| ${o.arch} | ${o.batch} | ${o.engine.slice(OURS_PREFIX.length)} | ${ratios.join(' | ')} |`);
  }
  if (!ours.length) L.push('| — | | no resnet-ts row was timed | | | |');
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
  L.push('## Peak memory', '');
  L.push(`Peak resident set size (process.resourceUsage().maxRSS) of a fresh process that loads the weights from file and runs ${rssRows[0]?.arch ?? 'resnet50'} at batch 1 three times. A bare \`node -e ''\` peaks at ${(baselineRssKiB / 1024).toFixed(0)} MiB here.`, '');
  L.push('| engine | peak RSS MiB |');
  L.push('|:---|---:|');
  for (const r of rssRows) L.push(`| ${engineLabel(r.engine)} | ${r.error ? `failed: ${r.error.split('\n')[0]}` : (r.maxRssKiB! / 1024).toFixed(0)} |`);
  L.push('');
  return L.join('\n');
}

// ---------------------------------------------------------------- main

const started = new Date();
const load = { start: loadavg(), end: [] as number[] };
const exportInfo = exportMissingModels();
const ourBackends = listBackends().filter((b) => b !== 'meta' && b !== 'ref');
const peers = args.engines ? PEERS.filter((p) => args.engines!.split(',').includes(p)) : [...PEERS];
const chosen = (engine: string) => !args.engines || args.engines.split(',').includes(engine);
const common = { threads, input: INPUT, modelsDir, warmup: 2, tolerance: TOLERANCE };

const plan: { engine: string; arch: string; batch: number }[] = [];
for (const arch of archs) {
  for (const batch of batches) {
    // The reference backend is the slow oracle: one row for scale, ResNet-18 at batch 1.
    const engines = [...(arch === 'resnet18' && batch === 1 ? ['ref'] : []), ...ourBackends].map((b) => OURS_PREFIX + b).filter(chosen);
    for (const engine of [...engines, ...peers]) plan.push({ engine, arch, batch });
  }
}
const rssEngines = [...['ref', ...ourBackends].map((b) => OURS_PREFIX + b), 'onnxruntime-node'].filter(chosen);
const rssArch = archs.includes('resnet50') ? 'resnet50' : archs[archs.length - 1];

log(`plan: ${archs.length} references, ${plan.length} timed rows, ${rssEngines.length} memory rows`);
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
const rssRows: Row[] = [];
for (const engine of rssEngines) {
  rssRows.push(await measure({ ...common, mode: 'rss', engine, arch: rssArch, batch: 1 }, `memory: ${rssArch} batch 1 on ${engine}`));
  log(`  peak RSS ${((rssRows[rssRows.length - 1].maxRssKiB ?? NaN) / 1024).toFixed(0)} MiB`);
}
const baseline = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.resourceUsage().maxRSS))'], { encoding: 'utf8' });
load.end = loadavg();

const seconds = (Date.now() - started.getTime()) / 1000;
writeFileSync(args.out, report(rows, references, rssRows, Number(baseline.stdout), exportInfo, load, started, seconds));
writeFileSync(join(repoRoot, 'bench', 'results.json'), `${JSON.stringify({ started, references, rows, rssRows }, null, 1)}\n`);
log(`wrote ${args.out} and bench/results.json in ${Math.round(seconds)} s`);
process.exitCode = rows.some((r) => r.error) || rssRows.some((r) => r.error) ? 1 : 0;
