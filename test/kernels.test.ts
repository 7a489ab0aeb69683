// One kernel test body for every fast backend: the native addon's builds (AVX-512F, AVX2+FMA,
// portable) and the WebAssembly builds (relaxed SIMD, plain SIMD128), each on 1 and 2 threads,
// against the reference backend on the named edge cases and seeded random shapes of
// test/helpers/kernel-cases.ts. A build this machine cannot run is a skipped test that says why.
// Tolerance: max|fast - ref| <= 1e-5 * max|ref| per output (the reference accumulates in
// float64, the kernels in float32: about 1e-6 of that scale at K = 4608); max pool and relu
// exactly.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../src/core/tensor.js';
import { Generator } from '../src/core/rng.js';
import { createReferenceBackend, type Backend } from '../src/backends/index.js';
import { nativeAvailable } from '../src/backends/native/index.js';
import { convOutputSize } from '../src/ops/functional.js';
import { assertCloseToReference } from './helpers/compare.js';
import { fastBackends } from './helpers/fast-backends.js';
import {
  adaptiveCases, convArguments, convCases, elementwiseShapes, epilogues, linearCases, poolCases, random, randomConvCases,
  type ConvCase, type Epilogue,
} from './helpers/kernel-cases.js';

const REL_TOL = 1e-5;
const ref = createReferenceBackend();

const { runnable, unrunnable } = fastBackends();

for (const { tag, why } of unrunnable) test(`kernels on ${tag}`, { skip: why }, () => {});

test('the fast backends under test', () => {
  assert.ok(runnable.length >= 2, `at least the wasm builds run everywhere: ${runnable.map((f) => f.tag).join(', ')}`);
  if (nativeAvailable()) assert.ok(runnable.some((f) => f.tag.startsWith('native')));
});

/** A convolution on every runnable backend, twice (the second from the cached packing). */
function checkConv(rng: Generator, c: ConvCase, epilogue: Epilogue): void {
  const { x, weight, bias, p, outH, outW, ep } = convArguments(rng, c, epilogue);
  const expected = ref.conv2d(x, weight, bias, p, outH, outW, ep);
  for (const fast of runnable) {
    const what = `${fast.tag}: conv ${c.name} [${c.x}] w[${c.w}] ${epilogue.name}`;
    fast.use((b) => {
      assertCloseToReference(b.conv2d(x, weight, bias, p, outH, outW, ep), expected, REL_TOL, what);
      assertCloseToReference(b.conv2d(x, weight, bias, p, outH, outW, ep), expected, REL_TOL, `${what} (cached packing)`);
    });
  }
}

test('conv2d: named cases × epilogues, every fast backend', () => {
  const rng = new Generator(20240611);
  for (const c of convCases) for (const e of epilogues) checkConv(rng, c, e);
});

test('conv2d: 40 seeded random shapes, every fast backend', () => {
  const rng = new Generator(99);
  for (const [i, c] of randomConvCases(4242, 40).entries()) checkConv(rng, c, epilogues[i % epilogues.length]);
});

test('maxPool2d, adaptiveAvgPool2d, linear, channelAffine, add, relu: every fast backend', () => {
  const rng = new Generator(7);
  const each = (what: string, op: (b: Backend) => Tensor, tol: number) => {
    const expected = op(ref);
    for (const fast of runnable) fast.use((b) => assertCloseToReference(op(b), expected, tol, `${fast.tag}: ${what}`));
  };
  for (const [shape, p] of poolCases) {
    const x = random(rng, shape);
    const outH = convOutputSize(shape[2], p.kernel[0], p.stride[0], p.padding[0], p.dilation[0]);
    const outW = convOutputSize(shape[3], p.kernel[1], p.stride[1], p.padding[1], p.dilation[1]);
    x.f32[3] = NaN;
    x.f32[7] = -Infinity;
    const expected = ref.maxPool2d(x, p, outH, outW);
    for (const fast of runnable) {
      // Bit-exact (a max): NaN where the reference has NaN, equal elsewhere.
      const y = fast.use((b) => b.maxPool2d(x, p, outH, outW));
      for (let i = 0; i < y.size; i++) assert.ok(Object.is(y.f32[i], expected.f32[i]), `${fast.tag}: maxPool2d [${shape}] at ${i}`);
    }
  }
  const withNaN = random(rng, [1, 1, 4, 4]);
  withNaN.f32[5] = NaN;
  withNaN.f32[15] = -Infinity;
  for (const fast of runnable) {
    const pooled = fast.use((b) => b.maxPool2d(withNaN, { kernel: [2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1] }, 2, 2));
    assert.ok(Number.isNaN(pooled.f32[0]) && !Number.isNaN(pooled.f32[3]), `${fast.tag}: maxPool2d propagates NaN`);
  }
  for (const [shape, outH, outW] of adaptiveCases) {
    const x = random(rng, shape);
    each(`adaptiveAvgPool2d [${shape}] → ${outH}×${outW}`, (b) => b.adaptiveAvgPool2d(x, outH, outW), REL_TOL);
  }
  for (const [batch, inFeatures, outFeatures] of linearCases) {
    const x = random(rng, [batch, inFeatures]);
    const weight = random(rng, [outFeatures, inFeatures]);
    for (const bias of [random(rng, [outFeatures]), null]) {
      each(`linear ${batch}×${inFeatures} → ${outFeatures}${bias ? ' + bias' : ''}`, (b) => b.linear(x, weight, bias), REL_TOL);
    }
  }
  for (const shape of elementwiseShapes) {
    const x = random(rng, shape);
    const y = random(rng, shape);
    const scale = random(rng, [shape[1]]).f32;
    const shift = random(rng, [shape[1]]).f32;
    each(`channelAffine [${shape}]`, (b) => b.channelAffine(x, scale, shift), REL_TOL);
    each(`add [${shape}]`, (b) => b.add(x, y), REL_TOL);
    each(`relu [${shape}]`, (b) => b.relu(x), 0);
  }
  const odd = Tensor.from([-1, 2, NaN, -0, 3.5, -7, 1e-30]);
  for (const fast of runnable) {
    assert.deepEqual([...fast.use((b) => b.relu(odd)).f32], [...ref.relu(odd).f32], `${fast.tag}: relu of NaN, -0 and denormals as the reference`);
    const moments = fast.use((b) => b.channelMoments(random(rng, [2, 3, 4, 4])));
    assert.equal(moments.mean.length, 3);
  }
});
