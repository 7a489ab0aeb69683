// The ten torchvision ResNet builders, one line each as in torchvision, and the registry
// (listModels / getModel) that the CLI and users look models up by name in. Like torchvision's,
// a builder takes `weights` (src/weights): then it loads them and returns a Promise.

import { BasicBlock, Bottleneck, ResNet, type BlockType, type ResNetOptions } from './resnet.js';
import { loadWeights, resolveWeights, type WeightsSpec } from '../weights/load.js';
import { skipInit } from '../nn/init.js';

export type BuilderOptions = ResNetOptions;

/** A builder's `progress`: stderr on or off (Node), or a callback. */
type Progress = boolean | ((loaded: number, total: number | undefined) => void);

/** Pretrained weights for a builder, as torchvision's `weights` and `progress` arguments. */
export interface WeightsOptions {
  /**
   * 'IMAGENET1K_V1', 'IMAGENET1K_V2' or 'DEFAULT' (torchvision's best), a WeightsDescriptor, a
   * file path, an http(s) URL, or a file's contents (a File, Blob, ArrayBuffer or Uint8Array).
   * Downloads are cached (a directory in Node, the Cache Storage in a browser) and checked
   * against the SHA-256 prefix in the file name. With weights the builder returns a Promise.
   */
  weights?: WeightsSpec | null;
  /** Download progress: on stderr in Node (default true), or a callback (bytes so far, total if known). */
  progress?: Progress;
}

/** Options without weights: the builder returns a ResNet. */
type PlainOptions = BuilderOptions & { weights?: null; progress?: Progress };
/** Options with weights: the builder returns a Promise. */
type PretrainedOptions = BuilderOptions & { weights: WeightsSpec; progress?: Progress };
/** Weights that may or may not be there: pass the key, get the union. */
type MaybePretrainedOptions = BuilderOptions & { weights: WeightsSpec | null | undefined; progress?: Progress };

/**
 * A builder: a ResNet now, or with `weights` a Promise of one with the weights loaded. The plain
 * signature comes again last so that Parameters<> sees the options of a model without weights.
 */
export interface Builder {
  (options: PretrainedOptions): Promise<ResNet>;
  (options?: PlainOptions): ResNet;
  (options: MaybePretrainedOptions): ResNet | Promise<ResNet>;
  (options?: PlainOptions): ResNet;
}

/** torchvision's _ovewrite_named_param: a builder's fixed value may be restated, not changed. */
function overwriteNamedParam<K extends 'groups' | 'widthPerGroup' | 'numClasses'>(
  options: BuilderOptions,
  name: K,
  value: number,
  displayName: string = name,
): BuilderOptions {
  const given = options[name];
  if (given !== undefined && given !== value) {
    throw new RangeError(`The parameter '${displayName}' expected value ${value} but got ${given} instead.`);
  }
  return { ...options, [name]: value };
}

/** The parameters a builder fixes (ResNeXt's groups and widths, Wide ResNet's width). */
type FixedParams = Partial<Record<'groups' | 'widthPerGroup', number>>;

function withFixedParams(options: BuilderOptions, fixed: FixedParams): BuilderOptions {
  for (const [name, value] of Object.entries(fixed)) options = overwriteNamedParam(options, name as keyof FixedParams, value);
  return options;
}

/** torchvision's _resnet, as the builder of one architecture. */
function builder(arch: string, block: BlockType, layers: readonly number[], fixed: FixedParams = {}): Builder {
  // With weights every failure, a bad option included, rejects the returned Promise.
  const buildPretrained = async (options: BuilderOptions, weights: WeightsSpec, progress?: Progress): Promise<ResNet> => {
    options = withFixedParams(options, fixed);
    const source = resolveWeights(arch, weights);
    if (typeof source !== 'string' && 'meta' in source) {
      // torchvision's check, and its message, which names the keyword argument.
      options = overwriteNamedParam(options, 'numClasses', source.meta.categories.length, 'num_classes');
    }
    const stateDict = await loadWeights(source, { progress });
    // Every tensor comes from the file: no initialisation to draw, and the parameters take the
    // loaded tensors' memory (read from a file of our own) rather than a copy of it.
    const endSkip = skipInit();
    let model: ResNet;
    try {
      model = new ResNet(block, layers, options);
    } finally {
      endSkip();
    }
    model.loadStateDict(stateDict, { strict: true, assign: true });
    return model;
  };
  const build = (options: BuilderOptions & WeightsOptions = {}): ResNet | Promise<ResNet> => {
    const { weights, progress, ...modelOptions } = options;
    if (weights === undefined || weights === null) return new ResNet(block, layers, withFixedParams(modelOptions, fixed));
    return buildPretrained(modelOptions, weights, progress);
  };
  return build as Builder;
}

/** ResNet-18 from "Deep Residual Learning for Image Recognition". */
export const resnet18 = builder('resnet18', BasicBlock, [2, 2, 2, 2]);

/** ResNet-34 from "Deep Residual Learning for Image Recognition". */
export const resnet34 = builder('resnet34', BasicBlock, [3, 4, 6, 3]);

/** ResNet-50 (V1.5: stride on the 3x3 convolution of the bottleneck). */
export const resnet50 = builder('resnet50', Bottleneck, [3, 4, 6, 3]);

export const resnet101 = builder('resnet101', Bottleneck, [3, 4, 23, 3]);

export const resnet152 = builder('resnet152', Bottleneck, [3, 8, 36, 3]);

/** ResNeXt-50 32x4d from "Aggregated Residual Transformation for Deep Neural Networks". */
export const resnext50_32x4d = builder('resnext50_32x4d', Bottleneck, [3, 4, 6, 3], { groups: 32, widthPerGroup: 4 });

export const resnext101_32x8d = builder('resnext101_32x8d', Bottleneck, [3, 4, 23, 3], { groups: 32, widthPerGroup: 8 });

export const resnext101_64x4d = builder('resnext101_64x4d', Bottleneck, [3, 4, 23, 3], { groups: 64, widthPerGroup: 4 });

/**
 * Wide ResNet-50-2 from "Wide Residual Networks": the same as ResNet-50 except that the
 * bottleneck's inner channels are twice as wide; the outer 1x1 convolutions keep theirs.
 */
export const wide_resnet50_2 = builder('wide_resnet50_2', Bottleneck, [3, 4, 6, 3], { widthPerGroup: 64 * 2 });

export const wide_resnet101_2 = builder('wide_resnet101_2', Bottleneck, [3, 4, 23, 3], { widthPerGroup: 64 * 2 });

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

/** The builder `name` called with `options`; with `weights`, a Promise (see Builder). */
export function getModel(name: string, options: PretrainedOptions): Promise<ResNet>;
export function getModel(name: string, options?: PlainOptions): ResNet;
export function getModel(name: string, options: MaybePretrainedOptions): ResNet | Promise<ResNet>;
export function getModel(name: string, options?: PlainOptions): ResNet;
export function getModel(name: string, options: BuilderOptions & WeightsOptions = {}): ResNet | Promise<ResNet> {
  if (!isModelName(name)) {
    throw new RangeError(`unknown model '${name}'; available: ${listModels().join(', ')}`);
  }
  return builders[name]({ ...options, weights: options.weights });
}
