// The benchmark tool and `resnet bench`: how many runs the timing loop makes, what a result
// holds, thread counts reaching backends that take them, and the command's output and exit
// codes. Nothing here asserts a speed: timings are for BENCHMARKS.md, not for tests.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { getBackend, registerBackend, setBackend, createReferenceBackend } from '../src/backends/index.js';
import { getModel } from '../src/models/builders.js';
import { summarize } from '../src/tools/summary.js';
import { benchmarkModel, median, timeRuns, useBackend, type BenchProgress } from '../src/tools/bench.js';
import { repoRoot } from './helpers/paths.js';

const bin = join(repoRoot, 'bin', 'resnet.js');

function resnet(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('median of odd and even counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test('timeRuns: a fixed count after the warm-up, with progress for each run', async () => {
  let calls = 0;
  const progress: BenchProgress[] = [];
  const t = await timeRuns(() => void calls++, { warmup: 2, iterations: 3, onProgress: (p) => progress.push(p) });
  assert.equal(calls, 5);
  assert.equal(t.timesMs.length, 3);
  assert.deepEqual(progress.map((p) => [p.phase, p.iteration, p.total]), [
    ['warmup', 1, 2],
    ['warmup', 2, 2],
    ['measure', 1, 3],
    ['measure', 2, 3],
    ['measure', 3, 3],
  ]);
  assert.ok(t.minMs <= t.medianMs);
});

test('timeRuns: the adaptive count stays within its bounds, and maxTimeMs cuts slow engines short', async () => {
  const quick = await timeRuns(() => undefined, { warmup: 0, minTimeMs: 1e9, minIterations: 2, maxIterations: 7 });
  assert.equal(quick.timesMs.length, 7);
  const enough = await timeRuns(() => undefined, { warmup: 0, minTimeMs: 0, minIterations: 4 });
  assert.equal(enough.timesMs.length, 4);
  const sleep = () => new Promise((resolve) => setTimeout(resolve, 30));
  const slow = await timeRuns(sleep, { warmup: 3, minIterations: 5, maxTimeMs: 20 });
  assert.equal(slow.timesMs.length, 1);
});

test('benchmarkModel reports throughput from the summary and restores the backend', async () => {
  const before = getBackend().name;
  const r = await benchmarkModel({ arch: 'resnet18', batch: 2, input: [3, 32, 32], warmup: 0, iterations: 2, backend: 'ref', threads: 4 });
  assert.equal(getBackend().name, before);
  assert.equal(r.arch, 'resnet18');
  assert.equal(r.batch, 2);
  assert.equal(r.backend, 'ref');
  assert.equal(r.iterations, 2);
  assert.equal(r.threadsSupported, false, 'the reference backend has no setThreads');
  assert.equal(r.threads, 1);
  const { totalMacs } = summarize(getModel('resnet18'), [2, 3, 32, 32]);
  assert.ok(Math.abs(r.gflops - (2 * totalMacs) / (r.medianMs * 1e6)) < 1e-9 * r.gflops);
  assert.ok(Math.abs(r.imagesPerSec - 2000 / r.medianMs) < 1e-9 * r.imagesPerSec);
});

test('useBackend hands the thread count over through setThreads or a threads setter, and reports what the backend took', () => {
  let received = 0;
  registerBackend('test-set-threads', () => ({ ...createReferenceBackend(), name: 'test-set-threads', setThreads: (n: number) => void (received = n) }));
  const viaMethod = useBackend('test-set-threads', 3);
  assert.equal(received, 3);
  assert.deepEqual([viaMethod.threads, viaMethod.threadsSupported], [3, true]);

  class ClampingBackend {
    #threads = 1;
    get threads(): number {
      return this.#threads;
    }
    set threads(n: number) {
      this.#threads = Math.min(n, 2); // a pool of two
    }
  }
  registerBackend('test-threads-property', () => Object.assign(new ClampingBackend(), { ...createReferenceBackend(), name: 'test-threads-property' }));
  const viaProperty = useBackend('test-threads-property', 8);
  assert.deepEqual([viaProperty.threads, viaProperty.threadsSupported], [2, true]);

  assert.deepEqual([useBackend('ref', 8).threads, useBackend('ref', 8).threadsSupported], [1, false]);
  setBackend('ref');
});

test('resnet bench --json prints one JSON line; progress goes to stderr', () => {
  const r = resnet(['bench', 'resnet18', '--backend', 'ref', '--input', '3x32x32', '--iterations', '2', '--warmup', '0', '--threads', '2', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, r.stdout);
  const result = JSON.parse(lines[0]);
  for (const key of ['arch', 'batch', 'threads', 'backend', 'medianMs', 'minMs', 'imagesPerSec', 'gflops']) assert.ok(key in result, key);
  assert.deepEqual([result.arch, result.batch, result.backend, result.iterations], ['resnet18', 1, 'ref', 2]);
  assert.match(r.stderr, /resnet18 batch 1 on ref: measure 2\/2/);
});

test("resnet bench: RESNET_BACKEND chooses the backend, 'auto' names what it resolved to, and bad choices exit 2", () => {
  const auto = resnet(['bench', 'resnet18', '--backend', 'auto', '--input', '3x32x32', '--iterations', '1', '--json']);
  assert.equal(auto.status, 0, auto.stderr);
  assert.notEqual(JSON.parse(auto.stdout).backend, 'auto');
  const ok = resnet(['bench', 'resnet18', '--input', '3x32x32', '--iterations', '1', '--json'], { RESNET_BACKEND: 'ref' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).backend, 'ref');
  assert.equal(resnet(['bench', 'resnet18', '--backend', 'nope']).status, 2);
  assert.equal(resnet(['bench', 'resnet18'], { RESNET_BACKEND: 'nope' }).status, 2);
  assert.equal(resnet(['bench', 'resnet18', '--threads', '0']).status, 2);
  const help = resnet(['bench', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--iterations/);
  assert.match(help.stdout, /Exit codes/);
});

test('resnet bench: an input the model cannot take exits 5', () => {
  const r = resnet(['bench', 'resnet18', '--input', '4x32x32', '--iterations', '1']);
  assert.equal(r.status, 5, r.stderr);
  assert.match(r.stderr, /to have 3 channels, but got 4/);
});
