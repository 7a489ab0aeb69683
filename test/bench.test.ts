// The benchmark tool and `resnet bench`: how many runs the timing loop makes, what a result
// holds, thread counts reaching backends that take them, and the command's output and exit
// codes; and the processes `npm run bench` drives (bench/): PyTorch's worker speaking the serve
// protocol, and the cold-start processes. Nothing here asserts a speed: timings are for
// BENCHMARKS.md, not for tests.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { Tensor } from '../src/core/tensor.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { writeTorchStateDict } from '../src/io/torch-writer.js';
import { exportOnnx } from '../src/tools/onnx.js';
import { getBackend, listBackends, registerBackend, setBackend, createReferenceBackend } from '../src/backends/index.js';
import { getModel } from '../src/models/builders.js';
import { summarize } from '../src/tools/summary.js';
import { backendIsa, benchmarkInput, benchmarkModel, median, timeRuns, useBackend, type BenchProgress } from '../src/tools/bench.js';
import { parseOurs } from '../bench/engine_setup.js';
import { relativeDifference } from '../bench/engines.js';
import { fromScratchSection } from '../bench/train.js';
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
  assert.equal(r.threadsSupported, false, 'the reference backend runs one thread whatever is asked');
  assert.equal(r.threads, 1);
  const { totalMacs } = summarize(getModel('resnet18'), [2, 3, 32, 32]);
  assert.ok(Math.abs(r.gflops - (2 * totalMacs) / (r.medianMs * 1e6)) < 1e-9 * r.gflops);
  assert.ok(Math.abs(r.imagesPerSec - 2000 / r.medianMs) < 1e-9 * r.imagesPerSec);
});

test('useBackend hands the thread count to the backend and reports what it took', () => {
  let pool = 1;
  // A backend with a pool of two: it clamps what it is asked.
  registerBackend('test-pool-of-two', () => ({
    ...createReferenceBackend(),
    name: 'test-pool-of-two',
    setThreads: (n: number) => void (pool = Math.min(n, 2)),
    getThreads: () => pool,
  }));
  const two = useBackend('test-pool-of-two', 8);
  assert.deepEqual([two.threads, two.threadsSupported, pool], [2, true, 2]);
  const one = useBackend('test-pool-of-two', 1);
  assert.deepEqual([one.threads, one.threadsSupported], [1, true]);

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

test('backendIsa reads an isa() method or an isa string, and null where a backend does not say', () => {
  registerBackend('test-isa-method', () => ({ ...createReferenceBackend(), name: 'test-isa-method', isa: () => 'avx512-test' }));
  registerBackend('test-isa-string', () => ({ ...createReferenceBackend(), name: 'test-isa-string', isa: 'simd-test' }));
  assert.equal(useBackend('test-isa-method', 1).isa, 'avx512-test');
  assert.equal(useBackend('test-isa-string', 1).isa, 'simd-test');
  assert.equal(backendIsa(createReferenceBackend()), null);
  setBackend('ref');
});

test('resnet bench --json says which ISA the kernels ran, as the backend reports it', () => {
  for (const name of listBackends().filter((b) => ['ref', 'wasm', 'native'].includes(b))) { // the built-in ones the CLI offers
    const expected = backendIsa(setBackend(name));
    const r = resnet(['bench', 'resnet18', '--backend', name, '--input', '3x32x32', '--iterations', '1', '--warmup', '0', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).isa, expected, name);
    if (name !== 'ref') assert.equal(typeof expected, 'string', `${name} reports its ISA`);
  }
  setBackend('ref');
});

test('resnet bench builds conv1 for the input\'s channels (grey 1×28×28 for the CIFAR ResNets)', () => {
  for (const [arch, input] of [['resnet18', '4x32x32'], ['resnet20', '1x28x28']]) {
    const r = resnet(['bench', arch, '--input', input, '--iterations', '1', '--warmup', '0', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).input, input.split('x').map(Number));
  }
});

// ---------------------------------------------------------------- bench/ processes

test("bench engine names: 'resnet-ts/<backend>[@<isa>]' is ours (the ISA forced through RESNET_NATIVE_ISA), anything else a peer", () => {
  assert.deepEqual(parseOurs('resnet-ts/native'), { backend: 'native', forcedIsa: null });
  assert.deepEqual(parseOurs('resnet-ts/native@avx512'), { backend: 'native', forcedIsa: 'avx512' });
  assert.deepEqual(parseOurs('resnet-ts/wasm'), { backend: 'wasm', forcedIsa: null });
  assert.equal(parseOurs('onnxruntime-node'), null);
  assert.equal(parseOurs('pytorch'), null);
});

const PYTHON = '/usr/bin/python3';
const torchProbe = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
const noTorch = torchProbe.status === 0 ? false : `${PYTHON} cannot import torch and torchvision: ${torchProbe.error?.message ?? torchProbe.stderr.trim().split('\n').pop()}`;

/**
 * A models folder as bench/export_onnx.py and the reference worker leave it, for a small
 * seeded resnet18 at 3×32×32: <arch>.pth, .onnx, .check.safetensors (input (2, 3, 32, 32)) and
 * .reference.safetensors (our logits for it, reference backend; `scaleReference` spoils them).
 */
function modelsFolder(scaleReference = 1): { dir: string; input: Tensor; logits: Tensor } {
  const dir = mkdtempSync(join(tmpdir(), 'resnet-bench-'));
  const model = getModel('resnet18', { seed: 7 });
  model.eval();
  setBackend('ref');
  const input = benchmarkInput([2, 3, 32, 32], 3);
  const logits = model.call(input);
  writeFileSync(join(dir, 'resnet18.pth'), writeTorchStateDict(model.stateDict()));
  writeFileSync(join(dir, 'resnet18.onnx'), exportOnnx(model));
  writeFileSync(join(dir, 'resnet18.check.safetensors'), writeSafetensors({ input, logits }));
  const spoiled = new Tensor(logits.f32.map((v) => v * scaleReference), logits.shape);
  writeFileSync(join(dir, 'resnet18.reference.safetensors'), writeSafetensors({ logits: spoiled }));
  return { dir, input, logits };
}

const torchWorker = join(repoRoot, 'bench', 'torch_worker.py');
const serveTask = (modelsDir: string) => ({ mode: 'serve', engine: 'pytorch', arch: 'resnet18', batch: 2, threads: 1, modelsDir, input: [3, 32, 32], warmup: 1, tolerance: 1e-4 });

test('bench/torch_worker.py serves PyTorch over the workers\' protocol: ready, one slice per command, then the row', { skip: noTorch }, async () => {
  const { dir } = modelsFolder();
  try {
    const child = spawn(PYTHON, [torchWorker, JSON.stringify(serveTask(dir))], { stdio: ['pipe', 'pipe', 'ignore'] });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const next = async () => JSON.parse((await lines.next()).value as string) as Record<string, unknown>;
    assert.deepEqual(await next(), { ready: true });
    child.stdin!.write(`${JSON.stringify({ minTimeMs: 0, maxTimeMs: 60000, minIterations: 3 })}\n`);
    const slice = await next();
    assert.equal(slice.slice, true);
    assert.equal((slice.timesMs as number[]).length, 3);
    assert.ok((slice.timesMs as number[]).every((ms) => ms > 0));
    assert.ok((slice.cpuCores as number) > 0);
    child.stdin!.write(`${JSON.stringify({ done: true })}\n`);
    const row = await next();
    assert.equal(row.error, undefined);
    assert.ok((row.relDiff as number) < 1e-4, `relDiff ${row.relDiff}`);
    const details = row.details as Record<string, unknown>;
    assert.equal(details.numThreads, 1);
    assert.match(details.module as string, /torch\.jit\.freeze/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('bench/torch_worker.py refuses to time a model whose logits differ from ours', { skip: noTorch }, () => {
  const { dir } = modelsFolder(1.01);
  try {
    const r = spawnSync(PYTHON, [torchWorker, JSON.stringify(serveTask(dir))], { encoding: 'utf8' });
    const row = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ready?: boolean; error?: string; relDiff: number };
    assert.equal(row.ready, undefined);
    assert.match(row.error!, /output differs from ours/);
    assert.ok(row.relDiff > 1e-3);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("bench/system.ts's peakRssKiB counts the process's own memory, not the parent's that maxRSS carries over a spawn", () => {
  const parent = Buffer.alloc(400 * 2 ** 20, 1); // this process now holds 400 MiB more
  const systemUrl = pathToFileURL(join(repoRoot, 'dist', 'bench', 'system.js')).href;
  const code = `import { peakRssKiB } from '${systemUrl}'; process.stdout.write(JSON.stringify([peakRssKiB(), process.resourceUsage().maxRSS]));`;
  const [peak, maxRss] = JSON.parse(spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' }).stdout) as number[];
  assert.ok(peak < 200 * 1024, `a bare node peaks at ${peak} KiB`);
  if (process.platform === 'linux') assert.ok(maxRss > 400 * 1024, `maxRSS ${maxRss} KiB: the parent's memory, as the comment says`);
  assert.equal(parent[0], 1);
});

test('cold-start processes load the model from its file and print its logits and peak memory', () => {
  const { dir, input, logits } = modelsFolder();
  try {
    const imagePath = join(dir, 'resnet18.image.f32');
    writeFileSync(imagePath, input.f32.subarray(0, 3 * 32 * 32));
    const expected = logits.f32.subarray(0, logits.shape[1]);
    const task = (engine: string) => JSON.stringify({ mode: 'coldstart', engine, arch: 'resnet18', threads: 1, modelsDir: dir, input: [3, 32, 32], imagePath });
    const runs: [string, string, string[]][] = [
      ['resnet-ts/ref', process.execPath, [join(repoRoot, 'dist', 'bench', 'cold_start.js')]],
      ['onnxruntime-node', process.execPath, [join(repoRoot, 'dist', 'bench', 'cold_start.js')]],
      ...(noTorch ? [] : [['pytorch', PYTHON, [torchWorker]] as [string, string, string[]]]),
    ];
    for (const [engine, command, script] of runs) {
      const r = spawnSync(command, [...script, task(engine)], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${engine}: ${r.stdout}${r.stderr}`);
      const answer = JSON.parse(r.stdout.trim()) as { logits: number[]; maxRssKiB: number; isa?: string | null };
      assert.ok(relativeDifference(answer.logits, expected) < 1e-4, engine);
      assert.ok(answer.maxRssKiB > 10 * 1024, `${engine}: ${answer.maxRssKiB} KiB`);
      if (engine.startsWith('resnet-ts/')) assert.equal(answer.isa, null, 'the reference backend names no ISA');
    }
    const bad = spawnSync(process.execPath, [join(repoRoot, 'dist', 'bench', 'cold_start.js'), task('nope')], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(JSON.parse(bad.stdout).error, /no cold start for 'nope'/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("the training-from-scratch section reports the shipped model's own log: best accuracy, cumulative minutes, the recipe", () => {
  const section = fromScratchSection(join(repoRoot, 'models', 'fashion-mnist-resnet20', 'log.json'), 'models/fashion-mnist-resnet20');
  const text = section.join('\n');
  assert.equal(section[0], '## Training from scratch');
  assert.match(text, /resnet train --arch resnet20 --data fashion-mnist --epochs \d+ --batch-size 128/);
  // One table row per epoch, the cumulative minutes growing, and the best accuracy named.
  const rows = section.filter((l) => /^\| \d+ \|/.test(l));
  assert.ok(rows.length >= 1);
  const minutes = rows.map((r) => Number(r.split('|')[3]));
  assert.ok(minutes.every((m, i) => i === 0 || m >= minutes[i - 1]), minutes.join(', '));
  const accuracies = rows.map((r) => Number(r.split('|')[2].replace('%', '')));
  assert.match(text, new RegExp(`Best: \\*\\*${Math.max(...accuracies).toFixed(2)}%\\*\\*`));
});
