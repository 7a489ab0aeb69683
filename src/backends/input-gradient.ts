// The input gradient of a stride-1 convolution is itself a convolution, so the fast backends
// run it on their forward kernels (packed GEMM, Winograd, the indirect micro-kernel) instead of
// GEMM + col2im:
//   dx = conv2d(dy, W', stride 1, padding (k − 1)·d − p, dilation d, the same groups),
//   W'[g·C/groups + c, o, ky, kx] = W[g·O/groups + o, c, kh − 1 − ky, kw − 1 − kx]
// (per group: the weight's channel axes swapped and its window turned by 180°). Strided
// convolutions, and padding beyond (k − 1)·d, take the backward kernel.

import { Tensor } from '../core/tensor.js';
import type { Conv2dParams } from './backend.js';

/** The parameters of the convolution that computes conv2d's input gradient, or null where there is none (stride > 1). */
export function inputGradientConv(p: Conv2dParams, kh: number, kw: number): Conv2dParams | null {
  if (p.stride[0] !== 1 || p.stride[1] !== 1) return null;
  const padH = (kh - 1) * p.dilation[0] - p.padding[0];
  const padW = (kw - 1) * p.dilation[1] - p.padding[1];
  if (padH < 0 || padW < 0) return null;
  return { stride: [1, 1], padding: [padH, padW], dilation: p.dilation, groups: p.groups };
}

/**
 * W' of each weight (see the top of the file), kept per weight tensor and rewritten in place
 * (its version bumped) when the weight's version moves on, so that a backend's packing cache
 * keyed on the W' tensor keeps one entry per weight across training steps.
 */
export class FlippedWeights {
  readonly #cache = new WeakMap<Tensor, { version: number; groups: number; flipped: Tensor }>();

  get(weight: Tensor, groups: number): Tensor {
    const hit = this.#cache.get(weight);
    if (hit && hit.version === weight.version && hit.groups === groups) return hit.flipped;
    const [outChannels, groupIn, kh, kw] = weight.shape;
    const groupOut = outChannels / groups;
    const flipped = hit && hit.groups === groups ? hit.flipped : Tensor.zeros([groupIn * groups, groupOut, kh, kw]);
    const src = weight.f32;
    const dst = flipped.f32;
    const taps = kh * kw;
    for (let g = 0; g < groups; g++) {
      for (let o = 0; o < groupOut; o++) {
        for (let c = 0; c < groupIn; c++) {
          const from = ((g * groupOut + o) * groupIn + c) * taps;
          const to = ((g * groupIn + c) * groupOut + o) * taps;
          for (let t = 0; t < taps; t++) dst[to + t] = src[from + taps - 1 - t];
        }
      }
    }
    flipped.bumpVersion();
    this.#cache.set(weight, { version: weight.version, groups, flipped });
    return flipped;
  }
}
