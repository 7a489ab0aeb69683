// Inference-time folding of BatchNorm into the convolution before it (eval mode only):
// conv(x, w) * s + t with s = γ/√(σ²+ε), t = β − μ·s equals conv(x, w·s) + t, so a block's
// conv → BN → (+ identity) → ReLU becomes one convolution with a fused epilogue.

import { Tensor } from '../core/tensor.js';
import type { ConvEpilogue } from '../backends/index.js';
import * as F from '../ops/functional.js';
import { BatchNorm2d, Conv2d } from './layers.js';
import { Module, stateEpoch } from './module.js';

interface Folded {
  epoch: number;
  bn: BatchNorm2d;
  weight: Tensor;
  bias: Tensor;
}

const folds = new WeakMap<Conv2d, Folded>();

/**
 * The folded weight and bias of conv followed by bn, cached until the next loadStateDict,
 * train() or eval() anywhere (after changing tensors in place by hand, call eval() again).
 */
export function foldConvBn(conv: Conv2d, bn: BatchNorm2d): { weight: Tensor; bias: Tensor } {
  const cached = folds.get(conv);
  if (cached && cached.bn === bn && cached.epoch === stateEpoch()) return cached;
  const channels = conv.outChannels;
  const perChannel = conv.weight.size / channels;
  const w = conv.weight.f32;
  const weight = new Float32Array(w.length);
  const bias = new Float32Array(channels);
  const mean = bn.runningMean!.f32;
  const variance = bn.runningVar!.f32;
  for (let o = 0; o < channels; o++) {
    const scale = (bn.weight ? bn.weight.f32[o] : 1) / Math.sqrt(variance[o] + bn.eps);
    for (let i = o * perChannel; i < (o + 1) * perChannel; i++) weight[i] = w[i] * scale;
    const convBias = conv.bias ? conv.bias.f32[o] : 0;
    bias[o] = (bn.bias ? bn.bias.f32[o] : 0) + (convBias - mean[o]) * scale;
  }
  const folded: Folded = { epoch: stateEpoch(), bn, weight: new Tensor(weight, conv.weight.shape), bias: new Tensor(bias, [channels]) };
  folds.set(conv, folded);
  return folded;
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
  const { weight, bias } = foldConvBn(conv, bn);
  return F.conv2d(x, weight, bias, { stride: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: conv.groups }, epilogue);
}
