// The wasm backend beyond its kernels (those are in kernels.test.ts, with every other fast
// backend): a whole ResNet-18 against the reference, the plain-SIMD fallback build, and the
// backend's own machinery (resident outputs, weight cache, memory growth, dispose).
// Tolerance: max|wasm - ref| <= 1e-5 * max|ref| per kernel output (float32 summed in another
// order, with FMA in the relaxed build); 1e-4 * max|logit| for the whole model.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, numel } from '../src/core/tensor.js';
import { Generator } from '../src/core/rng.js';
import { createReferenceBackend, setBackend, withBackend, type Backend, type Conv2dParams } from '../src/backends/index.js';
import { createWasmBackend, initWasmBackend, SMALL_OUTPUT_BYTES, type WasmBackend } from '../src/backends/wasm/index.js';
import { chooseVariant, type WasmBytes } from '../src/backends/wasm/loader.js';
import { getModel } from '../src/models/builders.js';
import { assertCloseToReference } from './helpers/compare.js';
import { checkPackingFollowsScaleAndGeometry } from './helpers/packing.js';
import { deterministicInput, filledModel } from './helpers/fill.js';

const KERNEL_TOL = 1e-5;
const MODEL_TOL = 1e-4;

const ref = createReferenceBackend();
const wasm1 = createWasmBackend({ threads: 1 });
const wasm2 = createWasmBackend({ threads: 2, splitSmallOps: true });
const backends: [string, WasmBackend][] = [['1 thread', wasm1], ['2 threads', wasm2]];
after(() => {
  wasm1.dispose();
  wasm2.dispose();
});

const rng = new Generator(1234);

function random(shape: number[], low = -1, high = 1): Tensor {
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform(low, high);
  return new Tensor(data, shape);
}

/** Runs `op` on the reference and on each wasm backend and compares. */
function check(what: string, op: (b: Backend) => Tensor, tol = KERNEL_TOL): void {
  const expected = op(ref);
  for (const [threads, backend] of backends) assertCloseToReference(op(backend), expected, tol, `${what} (${threads})`);
}

test('a chain of ops reads resident outputs in place, and workers take part', () => {
  const before = wasm2.stats().workerSlices;
  const x = random([1, 16, 40, 40]);
  const w = random([32, 16, 3, 3], -0.2, 0.2);
  const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
  const chain = (b: Backend): Tensor => b.relu(b.add(b.conv2d(b.relu(x), w, null, p, 40, 40), b.conv2d(x, w, null, p, 40, 40)));
  check('relu(add(conv(relu(x)), conv(x)))', chain);
  const y = wasm2.relu(x);
  assert.ok(y.f32.buffer instanceof SharedArrayBuffer, 'outputs live in the shared wasm memory');
  assert.ok(wasm2.stats().residentBytes > 0);
  // Slices are claimed in turn: on a busy machine the caller may take every slice of one call
  // before the worker wakes, so give it a bounded number of calls to take part in.
  for (let i = 0; i < 200 && wasm2.stats().workerSlices === before; i++) chain(wasm2);
  assert.ok(wasm2.stats().workerSlices > before, 'no slice ran on the worker thread in 200 calls');
});

test('release() frees an output now; a planned forward pass releases every activation but the logits', () => {
  const x = random([1, 32, 24, 24]); // 72 KiB: above SMALL_OUTPUT_BYTES, so the output stays in wasm memory
  const y = wasm1.relu(x);
  const held = wasm1.stats().residentBytes;
  wasm1.release(y);
  assert.equal(wasm1.stats().residentBytes, held - y.f32.byteLength);
  wasm1.release(y); // twice, and a tensor the backend does not own: ignored
  wasm1.release(x);
  assert.equal(wasm1.stats().residentBytes, held - y.f32.byteLength);

  const model = getModel('resnet18', { seed: 5 }).eval();
  const input = random([1, 3, 32, 32]);
  const expected = withBackend('ref', () => model.call(input));
  const registered = withBackend('wasm', () => setBackend('wasm')) as WasmBackend;
  const before = registered.stats().residentBytes;
  const logits = withBackend('wasm', () => model.call(input));
  assertCloseToReference(logits, expected, MODEL_TOL, 'resnet18 with intermediates released');
  // Nothing is held, although nothing is collected inside a synchronous test: every activation
  // went back after its last use (the plan's liveness), and the logits are small, so copied out.
  assert.equal(registered.stats().residentBytes - before, 0);
  assert.ok(!(logits.f32.buffer instanceof SharedArrayBuffer), 'the logits are an ordinary array');
});

test('outputs of at most SMALL_OUTPUT_BYTES are ordinary arrays, larger ones stay in wasm memory', () => {
  const floats = SMALL_OUTPUT_BYTES / 4;
  const small = wasm1.relu(random([1, 1, 1, floats]));
  const large = wasm1.relu(random([1, 1, 1, floats + 16]));
  assert.ok(!(small.f32.buffer instanceof SharedArrayBuffer));
  assert.ok(large.f32.buffer instanceof SharedArrayBuffer);
  wasm1.release(large);
});

test('synchronous forwards leave nothing in wasm memory: resident, live and total bytes stay flat', () => {
  // A loop that never yields lets no FinalizationRegistry callback run, so anything a forward
  // pass left in wasm memory would pile up until it yields: before small outputs were copied
  // out, the pooled features and logits (6 KB a pass) grew RSS by 5.3 MB over 1,000 ResNet-18
  // forwards at 224×224 (resident bytes by 6.0 MB). Those wasm figures are what RSS grew by, and
  // unlike RSS they are exact: 100 passes at 128×128 (stem to layer2 resident and released,
  // layer3 on copied out) after a warm-up must not move them by a byte.
  const model = getModel('resnet18', { seed: 6 }).eval().requiresGrad_(false); // frozen: the eval plan runs
  const registered = withBackend('wasm', () => setBackend('wasm')) as WasmBackend;
  const input = random([1, 3, 128, 128]);
  withBackend('wasm', () => {
    for (let i = 0; i < 5; i++) model.call(input);
    const before = registered.stats();
    let logits: Tensor | null = null;
    for (let i = 0; i < 100; i++) logits = model.call(input);
    const after = registered.stats();
    assert.deepEqual(logits!.shape, [1, 1000]);
    assert.equal(after.residentBytes - before.residentBytes, 0, 'outputs left in wasm memory');
    assert.equal(after.liveBytes - before.liveBytes, 0, 'wasm heap blocks left live');
    assert.equal(after.memoryBytes, before.memoryBytes, 'the wasm memory grew');
  });
});

test('past residentLimitBytes outputs are ordinary arrays, and still right', () => {
  const backend = createWasmBackend({ threads: 1, residentLimitBytes: 0 });
  const x = random([2, 3, 5, 5]);
  const y = backend.relu(x);
  assert.ok(!(y.f32.buffer instanceof SharedArrayBuffer));
  assertCloseToReference(y, ref.relu(x), 0, 'relu');
  assert.equal(backend.stats().residentBytes, 0);
  backend.dispose();
});

test('the memory grows past its first 16 MiB, and earlier outputs stay valid', () => {
  const backend = createWasmBackend({ threads: 2 });
  const small = random([1, 32, 24, 24]); // above SMALL_OUTPUT_BYTES: a view of the memory
  const first = backend.relu(small);
  const big = random([1, 64, 160, 160]); // 6.5 MB each: input copy, output, another output
  const y1 = backend.relu(big);
  const y2 = backend.add(y1, big);
  assert.ok(backend.stats().memoryBytes > 16 * 2 ** 20);
  assertCloseToReference(first, ref.relu(small), 0, 'output made before the memory grew');
  assertCloseToReference(y2, ref.add(ref.relu(big), big), 0, 'after growth');
  backend.dispose();
});

test('a weight changed in place is packed again', () => {
  const x = random([1, 8, 6, 6]);
  const w = random([8, 8, 3, 3]);
  const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
  check('before', (b) => b.conv2d(x, w, null, p, 6, 6));
  w.copy_(random([8, 8, 3, 3])); // as loadStateDict does to parameters
  check('after copy_', (b) => b.conv2d(x, w, null, p, 6, 6));
});

test('a weight packed with a folded scale or another stride is never mistaken for itself', () => {
  for (const [threads, backend] of backends) checkPackingFollowsScaleAndGeometry(backend, ref, KERNEL_TOL, `wasm (${threads})`);
});

test('packed weights past weightCacheBytes are dropped, least recently used first, and packed again when needed', () => {
  const backend = createWasmBackend({ threads: 1, weightCacheBytes: 9 * 8 * 8 * 4 * 2 });
  const x = random([1, 8, 6, 6]);
  const weights = [0, 1, 2].map(() => random([9, 8, 3, 3]));
  const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
  for (let round = 0; round < 2; round++) {
    for (const w of weights) {
      assertCloseToReference(backend.conv2d(x, w, null, p, 6, 6), ref.conv2d(x, w, null, p, 6, 6), KERNEL_TOL, `round ${round}`);
      assert.ok(backend.stats().weightBytes <= 9 * 8 * 8 * 4 * 2, `weightBytes ${backend.stats().weightBytes}`);
    }
  }
  backend.dispose();
});

test('after dispose() the backend runs on the calling thread alone', () => {
  const backend = createWasmBackend({ threads: 2, splitSmallOps: true });
  backend.dispose();
  const x = random([1, 5, 9, 9]);
  const w = random([6, 5, 3, 3]);
  const p: Conv2dParams = { stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 1 };
  assertCloseToReference(backend.conv2d(x, w, null, p, 5, 5), ref.conv2d(x, w, null, p, 5, 5), KERNEL_TOL, 'conv2d');
});

/** ResNet-18, eval, formula weights and input; the logits on `backend` against the reference. */
function checkResnet18(backend: string, what: string): void {
  const model = filledModel(() => getModel('resnet18')).eval();
  const input = deterministicInput([1, 3, 224, 224]);
  const expected = withBackend('ref', () => model.forward(input));
  const actual = withBackend(backend, () => model.forward(input));
  assertCloseToReference(actual, expected, MODEL_TOL, what);
}

test("resnet18 eval logits, 3×224×224: setBackend('wasm') against the reference", () => {
  const backend = setBackend('wasm') as WasmBackend;
  assert.equal(backend.name, 'wasm');
  assert.match(backend.isa, /^wasm-simd128/);
  checkResnet18('wasm', `resnet18 on ${backend.isa}, ${backend.threads} threads`);
  setBackend('ref');
});

test('the plain-SIMD fallback build loads, says so, and agrees', () => {
  const simd = createWasmBackend({ variant: 'simd', threads: 2 });
  try {
    assert.equal(simd.variant, 'simd');
    assert.equal(simd.isa, 'wasm-simd128');
    const x = random([2, 17, 9, 9]);
    const w = random([24, 17, 3, 3], -0.3, 0.3);
    const bias = random([24]);
    const residual = random([2, 24, 5, 5]);
    const p: Conv2dParams = { stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 1 };
    const expected = ref.conv2d(x, w, bias, p, 5, 5, { residual, relu: true });
    assertCloseToReference(simd.conv2d(x, w, bias, p, 5, 5, { residual, relu: true }), expected, KERNEL_TOL, 'conv2d on plain SIMD');
  } finally {
    simd.dispose();
  }
});

test('the loader falls back to plain SIMD where relaxed SIMD does not validate', () => {
  // A module of a wasm version no engine has: validate() says false, as for relaxed SIMD on an old engine.
  const unsupported = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00]) as WasmBytes;
  assert.equal(chooseVariant(unsupported, 'auto', null), 'simd');
  assert.throws(() => chooseVariant(unsupported, 'relaxed', null), /does not support WebAssembly relaxed SIMD/);
  assert.equal(chooseVariant(null, 'simd', null), 'simd');
});

test("initWasmBackend() compiles without blocking, waits for its workers, and becomes setBackend('wasm')", async () => {
  const backend = await initWasmBackend({ threads: 2 });
  try {
    assert.equal(setBackend('wasm'), backend);
    const x = random([1, 8, 20, 20]);
    assertCloseToReference(backend.relu(x), ref.relu(x), 0, 'relu');
  } finally {
    setBackend('ref');
    backend.dispose();
  }
});
