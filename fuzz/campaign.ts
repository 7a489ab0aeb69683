// The fuzz parent: deals inputs out in batches to child processes (fuzz/worker.ts), one input at a
// time per child, and turns what goes wrong into findings: an error other than the reader's typed
// one, a child that dies (a crash), an input that runs past the time limit (a hang: the child is
// killed) or one that grows the child's memory past the memory limit. Findings are written out as
// files that fuzz/run.ts --replay and the regression test read back.

import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { loadCorpus, makeMutant, READER_NAMES, type ReaderName } from './mutants.js';
import type { Outcome, WorkerBatch, WorkerResult } from './worker.js';

export type FindingKind = 'untyped' | 'crash' | 'hang' | 'memory';

export interface Finding {
  kind: FindingKind;
  reader: ReaderName;
  /** Seeded inputs: the campaign seed and index that rebuild it; replayed files: the path. */
  seed?: number;
  index?: number;
  path?: string;
  detail: string;
  /** Where the input was saved (mutants only, with `outDir`). */
  saved?: string;
}

export interface CampaignOptions {
  /** Seeded mutants [first, first + count) of campaign `seed`… */
  seed?: number;
  count?: number;
  first?: number;
  /** …or these files, each with its reader. */
  files?: { path: string; reader: ReaderName }[];
  workers?: number;
  /** Inputs per child process. */
  batchSize?: number;
  /** Per input: longer is a hang (the child is killed). */
  timeLimitMs?: number;
  /** Per input: a larger rise of the child's peak RSS is a finding; the child is killed at 4× it. */
  memoryLimitMiB?: number;
  /** Where findings' inputs and findings.jsonl go; none: not written. */
  outDir?: string;
  /** Called about once a second and at the end. */
  progress?: (report: CampaignReport) => void;
  /** Called with every input's result: a label (file path, or seed and index) and what the child reported. */
  onResult?: (label: string, result: WorkerResult) => void;
}

export interface CampaignReport {
  inputs: number;
  done: number;
  /** Per reader: inputs by outcome, plus crash/hang/memory. */
  byReader: Record<ReaderName, Record<Outcome | 'crash' | 'hang' | 'memory', number>>;
  findings: Finding[];
  slowestMs: number;
  slowest?: string;
  largestGrowthMiB: number;
  seconds: number;
}

/** The child's resident set, MiB, from /proc (Linux); undefined elsewhere or once it has gone. */
function residentMiB(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Extra time the first input of a child gets. */
const STARTUP_ALLOWANCE_MS = 10_000;

type Job = { kind: 'mutants'; seed: number; from: number; to: number } | { kind: 'files'; files: { path: string; reader: ReaderName }[] };

function jobSize(job: Job): number {
  return job.kind === 'mutants' ? job.to - job.from : job.files.length;
}

/** The job's inputs from `position` on (after a child died at position - 1). */
function rest(job: Job, position: number): Job | undefined {
  if (position >= jobSize(job)) return undefined;
  return job.kind === 'mutants' ? { ...job, from: job.from + position } : { kind: 'files', files: job.files.slice(position) };
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignReport> {
  const seed = options.seed ?? 1;
  const timeLimitMs = options.timeLimitMs ?? 2000;
  const memoryLimitMiB = options.memoryLimitMiB ?? 256;
  const batchSize = options.batchSize ?? 1000;
  const workerPath = new URL('./worker.js', import.meta.url);
  const corpus = loadCorpus();

  const queue: Job[] = [];
  let inputs: number;
  if (options.files !== undefined) {
    inputs = options.files.length;
    for (let k = 0; k < inputs; k += batchSize) queue.push({ kind: 'files', files: options.files.slice(k, k + batchSize) });
  } else {
    inputs = options.count ?? 100_000;
    const first = options.first ?? 0;
    for (let k = 0; k < inputs; k += batchSize) queue.push({ kind: 'mutants', seed, from: first + k, to: first + Math.min(inputs, k + batchSize) });
  }

  const counts = () => ({ ok: 0, typed: 0, untyped: 0, crash: 0, hang: 0, memory: 0 });
  const report: CampaignReport = {
    inputs, done: 0, byReader: Object.fromEntries(READER_NAMES.map((r) => [r, counts()])) as CampaignReport['byReader'],
    findings: [], slowestMs: 0, largestGrowthMiB: 0, seconds: 0,
  };
  const started = performance.now();
  // Children still running when this process exits (Ctrl-C: see run.ts) are killed with it.
  const live = new Set<ChildProcess>();
  const killLive = (): void => live.forEach((child) => child.kill('SIGKILL'));
  process.once('exit', killLive);
  if (options.outDir !== undefined) mkdirSync(options.outDir, { recursive: true });

  const describe = (job: Job, position: number): { reader: ReaderName; seed?: number; index?: number; path?: string; label: string } => {
    if (job.kind === 'files') {
      const { path, reader } = job.files[position];
      return { reader, path, label: path };
    }
    const index = job.from + position;
    return { reader: makeMutant(corpus, job.seed, index).reader, seed: job.seed, index, label: `seed ${job.seed} index ${index}` };
  };

  const record = (kind: FindingKind, job: Job, position: number, detail: string, reader?: ReaderName): void => {
    const where = describe(job, position);
    const finding: Finding = { kind, reader: reader ?? where.reader, seed: where.seed, index: where.index, path: where.path, detail };
    report.byReader[finding.reader][kind === 'untyped' ? 'untyped' : kind]++;
    if (options.outDir !== undefined && job.kind === 'mutants') {
      const mutant = makeMutant(corpus, job.seed, where.index!);
      finding.saved = join(options.outDir, `${kind}-${mutant.reader}-s${job.seed}-i${where.index}.bin`);
      writeFileSync(finding.saved, mutant.bytes);
      appendFileSync(join(options.outDir, 'findings.jsonl'),
        `${JSON.stringify({ ...finding, source: mutant.source, steps: mutant.steps })}\n`);
    }
    report.findings.push(finding);
  };

  let lastProgress = performance.now();
  const tick = (): void => {
    report.seconds = (performance.now() - started) / 1000;
    if (options.progress && performance.now() - lastProgress > 1000) {
      lastProgress = performance.now();
      options.progress(report);
    }
  };

  /** Runs one job in a fresh child; resolves with the job's unfinished rest if the child had to die. */
  const runJob = (job: Job): Promise<Job | undefined> => new Promise((resolve) => {
    const child: ChildProcess = fork(workerPath, [], {
      execArgv: [`--max-old-space-size=${Math.max(512, 2 * memoryLimitMiB)}`],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    live.add(child);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2000); });
    let position = 0; // the input the child is on
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    let verdict: { kind: FindingKind; detail: string } | undefined;
    const kill = (kind: FindingKind, detail: string): void => {
      if (verdict === undefined) verdict = { kind, detail };
      child.kill('SIGKILL');
    };
    const armTimer = (startup = 0): void => {
      clearTimeout(timer);
      timer = setTimeout(() => kill('hang', `no answer within ${timeLimitMs} ms`), timeLimitMs + startup);
    };
    const memoryWatch = setInterval(() => {
      const rss = residentMiB(child.pid!);
      if (rss !== undefined && rss > 4 * memoryLimitMiB + 256) kill('memory', `resident memory reached ${rss.toFixed(0)} MiB`);
    }, 20);

    child.on('message', (result: WorkerResult) => {
      armTimer();
      const counts = report.byReader[result.reader];
      const where = describe(job, result.position);
      options.onResult?.(where.label, result);
      if (result.ms > report.slowestMs) {
        report.slowestMs = result.ms;
        report.slowest = `${where.label} (${result.reader})`;
      }
      report.largestGrowthMiB = Math.max(report.largestGrowthMiB, result.peakGrowthMiB);
      if (result.peakGrowthMiB > memoryLimitMiB) {
        record('memory', job, result.position, `peak memory grew by ${result.peakGrowthMiB.toFixed(0)} MiB (${result.message ?? result.outcome})`, result.reader);
      } else if (result.ms > timeLimitMs) {
        record('hang', job, result.position, `took ${result.ms.toFixed(0)} ms (${result.message ?? result.outcome})`, result.reader);
      } else if (result.outcome === 'untyped') {
        record('untyped', job, result.position, result.message ?? '', result.reader);
      } else {
        counts[result.outcome]++;
      }
      report.done++;
      position = result.position + 1;
      if (position === jobSize(job)) finished = true;
      tick();
    });
    child.on('exit', (code, signal) => {
      live.delete(child);
      clearTimeout(timer);
      clearInterval(memoryWatch);
      if (finished && code === 0) return resolve(undefined);
      if (position < jobSize(job)) {
        const { kind, detail } = verdict ?? { kind: 'crash' as const, detail: `exit ${signal ?? code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}` };
        record(kind, job, position, detail);
        report.done++;
        tick();
        return resolve(rest(job, position + 1));
      }
      resolve(undefined);
    });
    child.once('spawn', () => {
      armTimer(STARTUP_ALLOWANCE_MS); // node, the readers and sharp load before the first input
      child.send(job satisfies WorkerBatch);
    });
  });

  const workers = Math.max(1, Math.min(options.workers ?? availableParallelism(), queue.length));
  await Promise.all(Array.from({ length: workers }, async () => {
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
      const unfinished = await runJob(job);
      if (unfinished !== undefined) queue.unshift(unfinished);
    }
  }));
  process.removeListener('exit', killLive);
  report.seconds = (performance.now() - started) / 1000;
  options.progress?.(report);
  return report;
}
