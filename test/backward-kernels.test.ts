// One test body for every backward kernel on every fast backend (native AVX-512F, AVX2+FMA and
// portable builds, wasm relaxed SIMD and SIMD128, each on 1 and 2 threads) against the reference
// backward kernels (the input gradient both ways: as a convolution where the stride is 1, and on
// its GEMM + col2im kernel), on the named edge cases of test/helpers/kernel-cases.ts (the forward's
// convolutions and the backward GEMMs' block boundaries) and seeded random geometries.
// Tolerances: max|fast - ref| <= 1e-5 * max|ref| per gradient (both sum in float32 over
// different blockings; the reference's sums of one image's pixels run in float64); max pooling
// and relu exactly (they only route dy).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../src/core/tensor.js';
import { Generator } from '../src/core/rng.js';
import { createReferenceBackend, referenceBackwardKernels as ref, type Backend, type BackwardKernels } from '../src/backends/index.js';
import { convOutputSize } from '../src/ops/functional.js';
import { assertCloseToReference } from './helpers/compare.js';
import { fastBackends } from './helpers/fast-backends.js';
import {
  adaptiveCases, backwardConvCases, convArguments, convCases, elementwiseShapes, epilogues, matmulCases, poolCases, random,
  randomConvCases, type ConvCase,
} from './helpers/kernel-cases.js';

const REL_TOL = 1e-5;
const { runnable, unrunnable } = fastBackends();
// The same builds with every input gradient on the backward GEMM + col2im kernel (by default a
// stride-1 one runs as a convolution on the forward kernels).
const gemmInputGradient = fastBackends({ inputGradientByConvolution: false }).runnable.map((f) => ({ ...f, tag: `${f.tag} (GEMM input gradient)` }));

for (const { tag, why } of unrunnable) test(`backward kernels on ${tag}`, { skip: why }, () => {});

/** The backend's own backward kernel; a fast backend must have every one. */
function own<K extends keyof BackwardKernels>(backend: Backend, kernel: K, tag: string): BackwardKernels[K] {
  const method = backend[kernel];
  assert.ok(method, `${tag} has no ${kernel}`);
  return (method as (...args: unknown[]) => unknown).bind(backend) as BackwardKernels[K];
}

function assertExact(actual: Tensor, expected: Tensor, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  for (let i = 0; i < expected.size; i++) assert.ok(Object.is(actual.f32[i], expected.f32[i]), `${what}: element ${i} is ${actual.f32[i]}, expected ${expected.f32[i]}`);
}

/** Both gradients of one convolution on every runnable backend. */
function checkConvBackward(rng: Generator, c: ConvCase): void {
  const { x, weight, p, outH, outW } = convArguments(rng, c, epilogues[0]);
  const dy = random(rng, [c.x[0], c.w[0], outH, outW]);
  const dx = ref.conv2dBackwardInput(dy, weight, p, c.x[2], c.x[3]);
  const dw = ref.conv2dBackwardWeight(x, dy, p, c.w[1], c.w[2]);
  for (const fast of [...runnable, ...gemmInputGradient]) {
    const what = `${fast.tag}: ${c.name} [${c.x}] w[${c.w}]`;
    fast.use((b) => {
      assertCloseToReference(own(b, 'conv2dBackwardInput', fast.tag)(dy, weight, p, c.x[2], c.x[3]), dx, REL_TOL, `${what} input gradient`);
      assertCloseToReference(own(b, 'conv2dBackwardWeight', fast.tag)(x, dy, p, c.w[1], c.w[2]), dw, REL_TOL, `${what} weight gradient`);
    });
  }
}

test('conv2d gradients: named cases, every fast backend', () => {
  const rng = new Generator(11);
  for (const c of [...convCases, ...backwardConvCases]) checkConvBackward(rng, c);
});

test('conv2d gradients: 40 seeded random shapes, every fast backend', () => {
  const rng = new Generator(12);
  for (const c of randomConvCases(777, 40)) checkConvBackward(rng, c);
});

test('max pool and adaptive pool gradients, every fast backend', () => {
  const rng = new Generator(13);
  for (const [shape, p] of poolCases) {
    const outH = convOutputSize(shape[2], p.kernel[0], p.stride[0], p.padding[0], p.dilation[0]);
    const outW = convOutputSize(shape[3], p.kernel[1], p.stride[1], p.padding[1], p.dilation[1]);
    const dy = random(rng, [shape[0], shape[1], outH, outW]);
    // Uniform values, then small integers (windows with tied maxima), then NaN and -inf.
    const ties = random(rng, shape).f32.map((v) => Math.round(v * 2));
    const special = random(rng, shape);
    special.f32[3] = NaN;
    special.f32[7] = -Infinity;
    if (special.size > 12) special.f32[12] = NaN;
    for (const x of [random(rng, shape), new Tensor(ties, shape), special]) {
      const expected = ref.maxPool2dBackward(x, dy, p);
      for (const fast of runnable) {
        assertExact(fast.use((b) => own(b, 'maxPool2dBackward', fast.tag)(x, dy, p)), expected, `${fast.tag}: maxPool2dBackward [${shape}]`);
      }
    }
  }
  const allInfinite = Tensor.full([1, 1, 3, 3], -Infinity);
  const pool = { kernel: [2, 2], stride: [1, 1], padding: [1, 1], dilation: [1, 1] } as const;
  const dyInfinite = random(rng, [1, 1, 4, 4]);
  const expected = ref.maxPool2dBackward(allInfinite, dyInfinite, pool);
  for (const fast of runnable) {
    assertExact(fast.use((b) => own(b, 'maxPool2dBackward', fast.tag)(allInfinite, dyInfinite, pool)), expected, `${fast.tag}: maxPool2dBackward of -inf windows`);
  }
  for (const [shape, outH, outW] of adaptiveCases) {
    const dy = random(rng, [shape[0], shape[1], outH, outW]);
    const expectedDx = ref.adaptiveAvgPool2dBackward(dy, shape[2], shape[3]);
    for (const fast of runnable) {
      const dx = fast.use((b) => own(b, 'adaptiveAvgPool2dBackward', fast.tag)(dy, shape[2], shape[3]));
      assertCloseToReference(dx, expectedDx, REL_TOL, `${fast.tag}: adaptiveAvgPool2dBackward [${shape}] from ${outH}×${outW}`);
    }
  }
});

test('batch norm, channel sums and relu gradients, every fast backend', () => {
  const rng = new Generator(14);
  const moments = createReferenceBackend();
  for (const shape of [...elementwiseShapes, [3, 7, 1, 1], [4, 16, 28, 28]]) {
    // An offset mean, so that x − mean matters.
    const x = random(rng, shape, 2, 5);
    const dy = random(rng, shape);
    const { mean, variance } = moments.channelMoments(x);
    const invStd = variance.map((v) => 1 / Math.sqrt(v + 1e-5));
    for (const gamma of [random(rng, [shape[1]]).f32, null]) {
      const expected = ref.batchNormBackward(x, dy, mean, invStd, gamma);
      for (const fast of runnable) {
        const what = `${fast.tag}: batchNormBackward [${shape}]${gamma ? '' : ' without affine'}`;
        const got = fast.use((b) => own(b, 'batchNormBackward', fast.tag)(x, dy, mean, invStd, gamma));
        assertCloseToReference(got.dx, expected.dx, REL_TOL, `${what} dx`);
        assertCloseToReference(Tensor.from(got.dGamma), Tensor.from(expected.dGamma), REL_TOL, `${what} dGamma`);
        assertCloseToReference(Tensor.from(got.dBeta), Tensor.from(expected.dBeta), REL_TOL, `${what} dBeta`);
      }
    }
    const y = random(rng, shape);
    y.f32[0] = 0;
    y.f32[1] = NaN;
    y.f32[2] = -0;
    const expectedRelu = ref.reluBackward(y, dy);
    const sums = Tensor.from(ref.channelSums(dy));
    const flat = dy.reshape([shape[0], -1]);
    const flatSums = Tensor.from(ref.channelSums(flat));
    for (const fast of runnable) {
      assertExact(fast.use((b) => own(b, 'reluBackward', fast.tag)(y, dy)), expectedRelu, `${fast.tag}: reluBackward [${shape}]`);
      assertCloseToReference(Tensor.from(fast.use((b) => own(b, 'channelSums', fast.tag)(dy))), sums, REL_TOL, `${fast.tag}: channelSums [${shape}]`);
      assertCloseToReference(Tensor.from(fast.use((b) => own(b, 'channelSums', fast.tag)(flat))), flatSums, REL_TOL, `${fast.tag}: channelSums [${flat.shape}]`);
    }
  }
});

test('matmul with every transpose, every fast backend', () => {
  const rng = new Generator(15);
  for (const [m, n, k] of matmulCases) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const a = random(rng, transA ? [k, m] : [m, k]);
        const b = random(rng, transB ? [n, k] : [k, n]);
        const expected = ref.matmul(a, b, transA, transB);
        for (const fast of runnable) {
          const c = fast.use((be) => own(be, 'matmul', fast.tag)(a, b, transA, transB));
          assertCloseToReference(c, expected, REL_TOL, `${fast.tag}: matmul ${m}×${k}·${k}×${n} transA ${transA} transB ${transB}`);
        }
      }
    }
  }
});

test('input gradient as a convolution: a weight written in place is flipped (and packed) again', () => {
  const rng = new Generator(16);
  const p = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 2 } as const;
  const weight = random(rng, [6, 2, 3, 3]);
  const dy = random(rng, [2, 6, 5, 5]);
  for (const fast of runnable) {
    fast.use((b) => {
      const backward = own(b, 'conv2dBackwardInput', fast.tag);
      assertCloseToReference(backward(dy, weight, p, 5, 5), ref.conv2dBackwardInput(dy, weight, p, 5, 5), REL_TOL, `${fast.tag}: first weight`);
      weight.fill_(0.25);
      assertCloseToReference(backward(dy, weight, p, 5, 5), ref.conv2dBackwardInput(dy, weight, p, 5, 5), REL_TOL, `${fast.tag}: after fill_`);
      weight.f32[5] = -2;
      weight.bumpVersion();
      assertCloseToReference(backward(dy, weight, p, 5, 5), ref.conv2dBackwardInput(dy, weight, p, 5, 5), REL_TOL, `${fast.tag}: after bumpVersion`);
      weight.copy_(random(rng, weight.shape));
    });
  }
});
