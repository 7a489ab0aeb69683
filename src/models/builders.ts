// The ten torchvision ResNet builders, one line each as in torchvision, and the registry
// (listModels / getModel) that the CLI and users look models up by name in.

import { BasicBlock, Bottleneck, ResNet, type BlockType, type ResNetOptions } from './resnet.js';

export type BuilderOptions = ResNetOptions;

/** torchvision's _ovewrite_named_param: a builder's fixed value may be restated, not changed. */
function overwriteNamedParam<K extends 'groups' | 'widthPerGroup'>(options: BuilderOptions, name: K, value: number): BuilderOptions {
  const given = options[name];
  if (given !== undefined && given !== value) {
    throw new RangeError(`The parameter '${name}' expected value ${value} but got ${given} instead.`);
  }
  return { ...options, [name]: value };
}

function resnet(block: BlockType, layers: readonly number[], options: BuilderOptions): ResNet {
  return new ResNet(block, layers, options);
}

/** ResNet-18 from "Deep Residual Learning for Image Recognition". */
export function resnet18(options: BuilderOptions = {}): ResNet {
  return resnet(BasicBlock, [2, 2, 2, 2], options);
}

/** ResNet-34 from "Deep Residual Learning for Image Recognition". */
export function resnet34(options: BuilderOptions = {}): ResNet {
  return resnet(BasicBlock, [3, 4, 6, 3], options);
}

/** ResNet-50 (V1.5: stride on the 3x3 convolution of the bottleneck). */
export function resnet50(options: BuilderOptions = {}): ResNet {
  return resnet(Bottleneck, [3, 4, 6, 3], options);
}

export function resnet101(options: BuilderOptions = {}): ResNet {
  return resnet(Bottleneck, [3, 4, 23, 3], options);
}

export function resnet152(options: BuilderOptions = {}): ResNet {
  return resnet(Bottleneck, [3, 8, 36, 3], options);
}

/** ResNeXt-50 32x4d from "Aggregated Residual Transformation for Deep Neural Networks". */
export function resnext50_32x4d(options: BuilderOptions = {}): ResNet {
  options = overwriteNamedParam(options, 'groups', 32);
  options = overwriteNamedParam(options, 'widthPerGroup', 4);
  return resnet(Bottleneck, [3, 4, 6, 3], options);
}

export function resnext101_32x8d(options: BuilderOptions = {}): ResNet {
  options = overwriteNamedParam(options, 'groups', 32);
  options = overwriteNamedParam(options, 'widthPerGroup', 8);
  return resnet(Bottleneck, [3, 4, 23, 3], options);
}

export function resnext101_64x4d(options: BuilderOptions = {}): ResNet {
  options = overwriteNamedParam(options, 'groups', 64);
  options = overwriteNamedParam(options, 'widthPerGroup', 4);
  return resnet(Bottleneck, [3, 4, 23, 3], options);
}

/**
 * Wide ResNet-50-2 from "Wide Residual Networks": the same as ResNet-50 except that the
 * bottleneck's inner channels are twice as wide; the outer 1x1 convolutions keep theirs.
 */
export function wide_resnet50_2(options: BuilderOptions = {}): ResNet {
  options = overwriteNamedParam(options, 'widthPerGroup', 64 * 2);
  return resnet(Bottleneck, [3, 4, 6, 3], options);
}

export function wide_resnet101_2(options: BuilderOptions = {}): ResNet {
  options = overwriteNamedParam(options, 'widthPerGroup', 64 * 2);
  return resnet(Bottleneck, [3, 4, 23, 3], options);
}

const builders = {
  resnet18,
  resnet34,
  resnet50,
  resnet101,
  resnet152,
  resnext50_32x4d,
  resnext101_32x8d,
  resnext101_64x4d,
  wide_resnet50_2,
  wide_resnet101_2,
} as const;

export type ModelName = keyof typeof builders;

/** The names getModel accepts, in torchvision's order. */
export function listModels(): ModelName[] {
  return Object.keys(builders) as ModelName[];
}

export function isModelName(name: string): name is ModelName {
  return Object.hasOwn(builders, name);
}

export function getModel(name: string, options: BuilderOptions = {}): ResNet {
  if (!isModelName(name)) {
    throw new RangeError(`unknown model '${name}'; available: ${listModels().join(', ')}`);
  }
  return builders[name](options);
}
