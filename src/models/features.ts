// Intermediate outputs of a ResNet in one forward pass, as torchvision's
// create_feature_extractor(model, return_nodes) and timm's features_only give them: the stem
// (conv1, bn1, relu, maxpool), the stages (layer1 … layer4), avgpool and fc, or any deeper
// module by its state-dict path ('layer3.1', 'layer2.0.downsample').
//
// Each requested module gets a forward hook and nothing else does: in eval mode the model's
// inference plan then computes exactly those outputs as tensors and fuses everything else as
// usual. The pass stops as soon as the last stage that holds a requested module has run:
// asking for layer1 costs the stem and layer1, not the whole net.

import type { Tensor } from '../core/tensor.js';
import { Bottleneck, type BasicBlock, type ResNet } from './resnet.js';
import { noGrad } from '../ops/autograd.js';

/** Thrown by a hook once every requested output is in; caught by extractFeatures. */
class FeaturesComplete {}

/**
 * The outputs of the modules named in `names` (state-dict paths, e.g. 'layer1', 'layer4',
 * 'avgpool', 'layer3.5.conv2'), for input x (N, 3, H, W), keyed in the order asked. A module
 * that runs more than once in a pass (a block's shared ReLU) gives its last output.
 * The model runs in its current mode (eval() for inference).
 */
export function extractFeatures(model: ResNet, x: Tensor, names: readonly string[]): Map<string, Tensor> {
  const modules = new Map(model.namedModules());
  const wanted = [...new Set(names)];
  for (const name of wanted) {
    if (name === '' || !modules.has(name)) {
      throw new RangeError(`no module '${name}' in the model; stages are ${[...model.namedChildren()].map(([n]) => n).join(', ')}`);
    }
  }
  // The model's direct children run once each, in order; the pass may stop after the last
  // one that is, or contains, a requested module.
  const children = [...model.namedChildren()].map(([n]) => n);
  const stageOf = (name: string): string => name.split('.')[0];
  const lastStage = children[Math.max(...wanted.map((name) => children.indexOf(stageOf(name))))];

  const outputs = new Map<string, Tensor>();
  const removers: (() => void)[] = [];
  try {
    for (const name of wanted) {
      removers.push(modules.get(name)!.registerForwardHook((_m, _input, output) => void outputs.set(name, output)));
    }
    // The stopper sits on a requested module or on the stage (a Sequential) holding one; a
    // hook on a Sequential leaves its blocks' fusion alone.
    removers.push(modules.get(lastStage)!.registerForwardHook(() => {
      throw new FeaturesComplete();
    }));
    noGrad(() => model.call(x));
  } catch (e) {
    if (!(e instanceof FeaturesComplete)) throw e;
  } finally {
    for (const remove of removers) remove();
  }
  return new Map(wanted.map((name) => [name, outputs.get(name)!]));
}

/** Where timm's features_only takes its maps: module, channels, and the stride from the input. */
export interface FeatureInfo {
  module: string;
  channels: number;
  /** Input size / feature-map size: 2, 4, 8, 16, 32 (less with replaceStrideWithDilation). */
  reduction: number;
}

/**
 * timm's feature_info for a ResNet: the stem's ReLU and the four stages, with their channel
 * counts and reductions, read from the model's layers (no forward pass).
 */
export function featureInfo(model: ResNet): FeatureInfo[] {
  let reduction = model.conv1.stride[0];
  const info: FeatureInfo[] = [{ module: 'relu', channels: model.conv1.outChannels, reduction }];
  reduction *= model.maxpool.stride[0];
  for (const name of ['layer1', 'layer2', 'layer3', 'layer4'] as const) {
    const blocks = model[name].layers as (BasicBlock | Bottleneck)[];
    // Only a stage's first block strides; it is 1 where replaceStrideWithDilation dilates instead.
    reduction *= blocks[0].stride;
    const last = blocks[blocks.length - 1];
    info.push({ module: name, channels: (last instanceof Bottleneck ? last.conv3 : last.conv2).outChannels, reduction });
  }
  return info;
}
