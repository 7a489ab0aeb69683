// Inference-time folding of BatchNorm into the convolution before it (eval mode only):
// conv(x, w) * s + t with s = γ/√(σ²+ε), t = β − μ·s equals conv(x, w·s) + t, so a block's
// conv → BN → (+ identity) → ReLU becomes one convolution with a fused epilogue.

import { Tensor } from '../core/tensor.js';
import { foldWeightScale, type ConvEpilogue } from '../backends/index.js';
import * as F from '../ops/functional.js';
import { BatchNorm2d, Conv2d } from './layers.js';
import { Module, stateEpoch } from './module.js';

interface Folded {
  epoch: number;
  bn: BatchNorm2d;
  scale: Float64Array;
  bias: Tensor;
}

const folds = new WeakMap<Conv2d, Folded>();

/**
 * The per-channel scale γ/√(σ²+ε) and the bias β + (b − μ)·scale of conv followed by bn, cached
 * until the next loadStateDict, train() or eval() anywhere (after changing tensors in place by
 * hand, call eval() again). The weight is not folded here: the backend folds the scale into its
 * packed copy (ConvEpilogue.scale), so no second copy of the weights is kept.
 */
export function foldConvBn(conv: Conv2d, bn: BatchNorm2d): { scale: Float64Array; bias: Tensor } {
  const cached = folds.get(conv);
  if (cached && cached.bn === bn && cached.epoch === stateEpoch()) return cached;
  const channels = conv.outChannels;
  const scale = new Float64Array(channels);
  const bias = new Float32Array(channels);
  const mean = bn.runningMean!.f32;
  const variance = bn.runningVar!.f32;
  for (let o = 0; o < channels; o++) {
    scale[o] = (bn.weight ? bn.weight.f32[o] : 1) / Math.sqrt(variance[o] + bn.eps);
    const convBias = conv.bias ? conv.bias.f32[o] : 0;
    bias[o] = (bn.bias ? bn.bias.f32[o] : 0) + (convBias - mean[o]) * scale[o];
  }
  const folded: Folded = { epoch: stateEpoch(), bn, scale, bias: new Tensor(bias, [channels]) };
  folds.set(conv, folded);
  return folded;
}

/** The folded weight w·scale[o] and bias of conv followed by bn, as one convolution's (for export). */
export function foldedConvWeights(conv: Conv2d, bn: BatchNorm2d): { weight: Tensor; bias: Tensor } {
  const { scale, bias } = foldConvBn(conv, bn);
  return { weight: new Tensor(foldWeightScale(conv.weight.f32, scale), conv.weight.shape), bias };
}

/** Whether conv → norm may run as one folded convolution: eval mode, BN with running stats, nobody watching. */
export function canFold(conv: Module, norm: Module): norm is BatchNorm2d {
  return (
    conv instanceof Conv2d &&
    norm instanceof BatchNorm2d &&
    !norm.training &&
    norm.runningMean !== null &&
    !conv.hasForwardHooks() &&
    !norm.hasForwardHooks()
  );
}

/** relu?(bn(conv(x)) + residual) as one convolution; the caller has checked canFold. */
export function convBnFused(conv: Conv2d, bn: BatchNorm2d, x: Tensor, epilogue: ConvEpilogue = {}): Tensor {
  const { scale, bias } = foldConvBn(conv, bn);
  const params = { stride: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: conv.groups };
  return F.conv2d(x, conv.weight, bias, params, { ...epilogue, scale });
}
