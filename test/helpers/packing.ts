// Checks of what a backend that packs weights (native, wasm) may cache: the packing of one
// weight tensor must follow the per-channel scale folded into it (ConvEpilogue.scale, BatchNorm
// in eval mode) and the geometry that chooses the algorithm (stride and dilation: Winograd or
// not), so the same weight used several ways gives each way's result.

import { Tensor } from '../../src/core/tensor.js';
import { Generator } from '../../src/core/rng.js';
import { foldWeightScale, type Backend, type Conv2dParams } from '../../src/backends/index.js';
import { convOutputSize } from '../../src/ops/functional.js';
import { assertCloseToReference } from './compare.js';

function random(rng: Generator, shape: number[], low = -1, high = 1): Tensor {
  const t = Tensor.zeros(shape);
  for (let i = 0; i < t.size; i++) t.f32[i] = rng.uniform(low, high);
  return t;
}

export function checkPackingFollowsScaleAndGeometry(backend: Backend, ref: Backend, tol: number, tag: string): void {
  const rng = new Generator(77);
  const x = random(rng, [2, 16, 13, 11]); // 3×3 stride 1: 42 tiles, Winograd
  for (const kernel of [3, 1]) {
    const weight = random(rng, [24, 16, kernel, kernel], -0.5, 0.5);
    const bias = random(rng, [24]);
    const scales = [0, 1, 2].map(() => Float64Array.from({ length: 24 }, () => rng.uniform(0.1, 3)));
    const geometries: Conv2dParams[] = [
      { stride: [1, 1], padding: [kernel >> 1, kernel >> 1], dilation: [1, 1], groups: 1 },
      { stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 1 },
      { stride: [1, 1], padding: [2, 2], dilation: [2, 2], groups: 1 },
    ];
    // Every (scale, geometry) pair in turn, then the first again: each must be computed afresh
    // or found in the cache, never taken from another pair's packing.
    const order = [...scales.flatMap((scale) => geometries.map((p) => ({ scale, p }))), { scale: scales[0], p: geometries[0] }];
    for (const [i, { scale, p }] of order.entries()) {
      const outH = convOutputSize(x.shape[2], kernel, p.stride[0], p.padding[0], p.dilation[0]);
      const outW = convOutputSize(x.shape[3], kernel, p.stride[1], p.padding[1], p.dilation[1]);
      const folded = new Tensor(foldWeightScale(weight.f32, scale), weight.shape);
      const expected = ref.conv2d(x, folded, bias, p, outH, outW, { relu: true });
      const got = backend.conv2d(x, weight, bias, p, outH, outW, { scale, relu: true });
      assertCloseToReference(got, expected, tol, `${tag} ${kernel}×${kernel} weight, use ${i}: scale #${scales.indexOf(scale)}, stride ${p.stride[0]}, dilation ${p.dilation[0]}`);
    }
    // One weight at two input sizes: a 3×3 stride-1 convolution is Winograd on the 13×11 plane
    // (42 tiles) and direct on 5×5 (9 tiles); the packing of one must never serve the other.
    const small = random(rng, [1, 16, 5, 5]);
    for (const [i, input] of [small, x, small].entries()) {
      const p = geometries[0];
      const [h, w] = [input.shape[2], input.shape[3]];
      const expected = ref.conv2d(input, new Tensor(foldWeightScale(weight.f32, scales[0]), weight.shape), bias, p, h, w);
      assertCloseToReference(backend.conv2d(input, weight, bias, p, h, w, { scale: scales[0] }), expected, tol, `${tag} ${kernel}×${kernel} weight at ${h}×${w}, use ${i}`);
    }
    // The reference itself folds the scale exactly as foldWeightScale does.
    const p = geometries[0];
    assertCloseToReference(
      ref.conv2d(x, weight, bias, p, 13, 11, { scale: scales[1] }),
      ref.conv2d(x, new Tensor(foldWeightScale(weight.f32, scales[1]), weight.shape), bias, p, 13, 11),
      0, `${tag} reference with scale`,
    );
  }
}
