// torchvision's parameter groups for weight decay (references/classification/utils.py,
// set_weight_decay): its training recipes exempt normalisation layers and biases from weight
// decay (--norm-weight-decay 0 --bias-weight-decay 0), by putting them in groups of their own.

import type { Tensor } from '../core/tensor.js';
import type { Module } from '../nn/module.js';
import { BatchNorm2d } from '../nn/layers.js';

export interface WeightDecayGroup {
  params: Tensor[];
  weightDecay: number;
}

/**
 * Parameter groups as torchvision's set_weight_decay makes them, in its order: "other" at
 * `weightDecay`, "norm" (parameters of BatchNorm layers) at `normWeightDecay`, then parameters
 * named `bias` at `biasWeightDecay` (a bias goes there even in a norm layer, as torchvision's
 * custom keys win). Groups left empty are dropped; frozen parameters (requiresGrad false) are
 * left out.
 */
export function setWeightDecay(
  model: Module, weightDecay: number, options: { normWeightDecay?: number; biasWeightDecay?: number } = {},
): WeightDecayGroup[] {
  const other: Tensor[] = [];
  const norm: Tensor[] = [];
  const bias: Tensor[] = [];
  for (const [, module] of model.namedModules()) {
    const own = [...module.namedParameters()].filter(([name]) => !name.includes('.'));
    for (const [name, p] of own) {
      if (!p.requiresGrad) continue;
      if (options.biasWeightDecay !== undefined && name === 'bias') bias.push(p);
      else if (options.normWeightDecay !== undefined && module instanceof BatchNorm2d) norm.push(p);
      else other.push(p);
    }
  }
  const groups: WeightDecayGroup[] = [{ params: other, weightDecay }];
  if (options.normWeightDecay !== undefined) groups.push({ params: norm, weightDecay: options.normWeightDecay });
  if (options.biasWeightDecay !== undefined) groups.push({ params: bias, weightDecay: options.biasWeightDecay });
  return groups.filter((g) => g.params.length > 0);
}
