// BatchNorm (eval mode) folded into the convolution before it: conv(x, w)·s + t with
// s = γ/√(σ²+ε) and t = β − μ·s equals conv(x, w·s) + t, so conv → BN is one convolution.
// The weight itself is not folded here: the scale goes to the backend as ConvEpilogue.scale and
// the fast backends fold it into their packed copy, so no folded copy of the model is kept.

import { Tensor } from '../core/tensor.js';
import { foldWeightScale } from '../backends/index.js';
import type { BatchNormArgs } from '../ops/trace.js';

/** A BatchNorm with running statistics, in eval mode: the kind that folds. */
export function foldable(args: BatchNormArgs): boolean {
  return !args.training && args.runningMean !== null && args.runningVar !== null;
}

export interface FoldedBatchNorm {
  /** Per output channel γ/√(σ²+ε), in float64 (the backends round w·scale to float32 once). */
  scale: Float64Array;
  /** β + (b − μ)·scale, b the convolution's bias (0 without one): (O). */
  bias: Tensor;
}

interface Cached extends FoldedBatchNorm {
  /** The tensors it was computed from and their versions then. */
  sources: (Tensor | null)[];
  versions: number[];
  eps: number;
}

/** By convolution weight: its fold, valid while its sources keep their identities and versions. */
const folds = new WeakMap<Tensor, Cached>();

/**
 * The scale and bias of convolution (weight, bias) followed by BatchNorm `bn` (foldable), cached
 * per weight tensor until a source tensor (BN's four, the conv's bias) is written in place
 * (Tensor.version). The same scale array is returned while nothing changed, so backends keep
 * their packed weights; a new one after a change, so they pack again.
 */
export function foldBatchNorm(weight: Tensor, convBias: Tensor | null, bn: BatchNormArgs): FoldedBatchNorm {
  const sources = [bn.weight, bn.bias, bn.runningMean, bn.runningVar, convBias];
  const cached = folds.get(weight);
  if (
    cached &&
    cached.eps === bn.eps &&
    cached.sources.every((t, i) => t === sources[i] && (t === null || t.version === cached.versions[i]))
  ) {
    return cached;
  }
  const channels = weight.shape[0];
  const scale = new Float64Array(channels);
  const bias = new Float32Array(channels);
  const mean = bn.runningMean!.f32;
  const variance = bn.runningVar!.f32;
  for (let o = 0; o < channels; o++) {
    scale[o] = (bn.weight ? bn.weight.f32[o] : 1) / Math.sqrt(variance[o] + bn.eps);
    bias[o] = (bn.bias ? bn.bias.f32[o] : 0) + ((convBias ? convBias.f32[o] : 0) - mean[o]) * scale[o];
  }
  const folded: Cached = {
    scale, bias: new Tensor(bias, [channels]), sources, versions: sources.map((t) => t?.version ?? 0), eps: bn.eps,
  };
  folds.set(weight, folded);
  return folded;
}

/** The folded weight w·scale[o] and bias, as one convolution's (for export, where a copy is wanted). */
export function foldedWeights(weight: Tensor, convBias: Tensor | null, bn: BatchNormArgs): { weight: Tensor; bias: Tensor } {
  const { scale, bias } = foldBatchNorm(weight, convBias, bn);
  return { weight: new Tensor(foldWeightScale(weight.f32, scale), weight.shape), bias };
}
