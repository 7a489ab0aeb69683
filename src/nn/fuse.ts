// BatchNorm folded into the convolution before it, for a Conv2d and a BatchNorm2d module: the
// inference plan's arithmetic (plan/fold.ts) for code that holds modules rather than a trace.

import type { Tensor } from '../core/tensor.js';
import { foldedWeights } from '../plan/index.js';
import type { BatchNorm2d, Conv2d } from './layers.js';

/** The folded weight w·γ/√(σ²+ε) and bias of conv followed by bn (eval mode, running statistics), as one convolution's. */
export function foldedConvWeights(conv: Conv2d, bn: BatchNorm2d): { weight: Tensor; bias: Tensor } {
  const { runningMean, runningVar, weight, bias, momentum, eps } = bn;
  return foldedWeights(conv.weight, conv.bias, { runningMean, runningVar, weight, bias, momentum, eps, training: false });
}
