// What the machine is and what it is doing around a measurement (Linux /proc; null elsewhere):
// the CPU and the checkout measured, how many OS threads this process has, its peak memory, and
// how busy all CPUs are, so that a benchmark can wait for a quiet machine and report the load
// it ran beside.

import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';

/** Kernel clock ticks per second in /proc/stat (USER_HZ, 100 on every Linux we run on). */
const TICKS_PER_SECOND = 100;

/** OS threads of this process: the main thread, libuv's and V8's helpers, and any library's pool. */
export function osThreadCount(): number | null {
  try {
    return readdirSync('/proc/self/task').length;
  } catch {
    return null;
  }
}

/**
 * This process's peak resident set size in KiB: VmHWM of /proc/self/status, the high-water mark
 * of its own address space. Not getrusage's maxRSS (process.resourceUsage().maxRSS), which Linux
 * carries over exec from the parent's memory at spawn: a child of a 600 MiB parent reports
 * at least 600 MiB there. maxRSS where /proc is missing.
 */
export function peakRssKiB(): number {
  try {
    const match = /^VmHWM:\s*(\d+)\s*kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match) return Number(match[1]);
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS;
}

/** Busy CPU seconds of the whole machine so far (all CPUs, every process), from /proc/stat. */
export function machineBusySeconds(): number | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
    const [user, nice, system, , , irq, softirq, steal] = fields;
    return (user + nice + system + irq + softirq + (steal ?? 0)) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** Measures CPU cores kept busy by other processes while `work` runs (this process's own time subtracted). */
export async function withOtherLoad<T>(work: () => Promise<T>): Promise<{ result: T; otherLoadCores: number | null }> {
  const busyStart = machineBusySeconds();
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  const result = await work();
  const wallSeconds = (performance.now() - wallStart) / 1000;
  const busyEnd = machineBusySeconds();
  const own = process.cpuUsage(cpuStart);
  if (busyStart === null || busyEnd === null) return { result, otherLoadCores: null };
  const other = busyEnd - busyStart - (own.user + own.system) / 1e6;
  return { result, otherLoadCores: Math.max(0, other / wallSeconds) };
}

/** Cores busy over the next `ms` (every process, this one included, which should be idle). */
export async function sampleLoad(ms: number): Promise<number | null> {
  const start = machineBusySeconds();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const end = machineBusySeconds();
  return start === null || end === null ? null : (end - start) / (ms / 1000);
}

/**
 * Waits until the machine's other work keeps less than `threshold` cores busy, sampling every
 * second, for at most `maxWaitMs`; returns the last load seen (null where /proc is missing).
 */
export async function waitForQuiet(threshold: number, maxWaitMs: number, onWait?: (load: number) => void): Promise<number | null> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const load = await sampleLoad(1000);
    if (load === null || load < threshold || Date.now() >= deadline) return load;
    onWait?.(load);
  }
}

/** The git commit of `repoRoot`, and whether tracked files were changed. */
export function gitDescription(repoRoot: string): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' });
  if (head.status !== 0) return 'not a git checkout';
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repoRoot, encoding: 'utf8' }).stdout.trim();
  return `commit ${head.stdout.trim()}${dirty ? ' with uncommitted changes' : ''}`;
}

/** /proc/cpuinfo's flags that name AVX-512 subsets, and how the report names them. */
const AVX512_FLAGS: [string, string][] = [
  ['avx512f', 'F'], ['avx512dq', 'DQ'], ['avx512cd', 'CD'], ['avx512bw', 'BW'], ['avx512vl', 'VL'],
  ['avx512_vnni', 'VNNI'], ['avx512_bf16', 'BF16'], ['avx512_fp16', 'FP16'],
];

/**
 * The CPU as /proc/cpuinfo names it (os.cpus() elsewhere), its family and model, and the vector
 * extensions the kernels care about: e.g. "AMD EPYC 9B45 (family 26, model 2); AVX2, FMA; AVX-512 F, DQ, BW, VL, VNNI, BF16".
 */
export function cpuDescription(): string {
  const fallback = cpus()[0]?.model ?? 'unknown';
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim();
    const flags = new Set((field('flags') ?? '').split(/\s+/));
    const avx = [['avx2', 'AVX2'], ['fma', 'FMA']].filter(([f]) => flags.has(f)).map(([, name]) => name);
    const avx512 = AVX512_FLAGS.filter(([f]) => flags.has(f)).map(([, name]) => name);
    const vector = `${avx.length ? avx.join(', ') : 'no AVX2'}; ${avx512.length ? `AVX-512 ${avx512.join(', ')}` : 'no AVX-512'}`;
    return `${field('model name') ?? fallback} (family ${field('cpu family')}, model ${field('model')}); ${vector}`;
  } catch {
    return fallback;
  }
}

/** CPU seconds of this process's children that have exited and been waited for (cutime + cstime of /proc/self/stat). */
export function childrenCpuSeconds(): number | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the command name's closing parenthesis start at field 3 (state); cutime and cstime are fields 16 and 17.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return (fields[16 - 3] + fields[17 - 3]) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}
