// ResNet (He et al. 2015, "Deep Residual Learning for Image Recognition") and its
// variants, built exactly as torchvision's models/resnet.py builds them: same classes,
// same order, same attribute names, so a torchvision state dict loads with no remapping.

import type { Tensor } from '../core/tensor.js';
import { Generator, getDefaultGenerator } from '../core/rng.js';
import * as F from '../ops/functional.js';
import { constant_, kaimingNormal_, deferInit, isInitSkipped } from '../nn/init.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';

/** Builds the normalisation layer for a number of channels; BatchNorm2d by default. */
export type NormLayer = (numFeatures: number) => Module;

const defaultNormLayer: NormLayer = (numFeatures) => new BatchNorm2d(numFeatures);

/** 3x3 convolution with padding */
export function conv3x3(inPlanes: number, outPlanes: number, stride = 1, groups = 1, dilation = 1): Conv2d {
  return new Conv2d(inPlanes, outPlanes, 3, { stride, padding: dilation, groups, bias: false, dilation });
}

/** 1x1 convolution */
export function conv1x1(inPlanes: number, outPlanes: number, stride = 1): Conv2d {
  return new Conv2d(inPlanes, outPlanes, 1, { stride, bias: false });
}

/** The blocks' shared constructor signature, so ResNet can build either kind. */
export interface BlockType {
  readonly expansion: number;
  new (
    inplanes: number,
    planes: number,
    stride?: number,
    downsample?: Module | null,
    groups?: number,
    baseWidth?: number,
    dilation?: number,
    normLayer?: NormLayer | null,
  ): Block;
}

/** A residual block; its last norm layer is the one `zeroInitResidual` zeroes. */
export interface Block extends Module {
  readonly lastNorm: Module;
}

export class BasicBlock extends Module implements Block {
  /** Its name in summaries and diagrams, kept through minifiers (which rename classes). */
  static readonly typeName = 'BasicBlock';
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: Module;
  readonly relu: ReLU;
  readonly conv2: Conv2d;
  readonly bn2: Module;
  readonly downsample: Module | null;
  readonly stride: number;

  constructor(
    inplanes: number,
    planes: number,
    stride = 1,
    downsample: Module | null = null,
    groups = 1,
    baseWidth = 64,
    dilation = 1,
    normLayer: NormLayer | null = null,
  ) {
    super();
    const norm = normLayer ?? defaultNormLayer;
    if (groups !== 1 || baseWidth !== 64) throw new RangeError('BasicBlock only supports groups=1 and base_width=64');
    if (dilation > 1) throw new RangeError('Dilation > 1 not supported in BasicBlock');
    // Both this.conv1 and this.downsample layers downsample the input when stride != 1
    this.conv1 = this.addModule('conv1', conv3x3(inplanes, planes, stride));
    this.bn1 = this.addModule('bn1', norm(planes));
    this.relu = this.addModule('relu', new ReLU());
    this.conv2 = this.addModule('conv2', conv3x3(planes, planes));
    this.bn2 = this.addModule('bn2', norm(planes));
    this.downsample = downsample ? this.addModule('downsample', downsample) : null;
    this.stride = stride;
  }

  get lastNorm(): Module {
    return this.bn2;
  }

  forward(x: Tensor): Tensor {
    let identity = x;

    let out = this.conv1.call(x);
    out = this.bn1.call(out);
    out = this.relu.call(out);

    out = this.conv2.call(out);
    out = this.bn2.call(out);

    if (this.downsample) identity = this.downsample.call(x);

    out = F.add(out, identity);
    out = this.relu.call(out);

    return out;
  }

}

/**
 * Bottleneck in torchvision places the stride for downsampling at the 3x3 convolution
 * (self.conv2), while the original implementation places it at the first 1x1 convolution
 * (self.conv1), according to "Deep residual learning for image recognition"
 * (https://arxiv.org/abs/1512.03385). This variant is also known as ResNet V1.5 and
 * improves accuracy according to
 * https://ngc.nvidia.com/catalog/model-scripts/nvidia:resnet_50_v1_5_for_pytorch.
 */
export class Bottleneck extends Module implements Block {
  /** Its name in summaries and diagrams, kept through minifiers (which rename classes). */
  static readonly typeName = 'Bottleneck';
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: Module;
  readonly conv2: Conv2d;
  readonly bn2: Module;
  readonly conv3: Conv2d;
  readonly bn3: Module;
  readonly relu: ReLU;
  readonly downsample: Module | null;
  readonly stride: number;

  constructor(
    inplanes: number,
    planes: number,
    stride = 1,
    downsample: Module | null = null,
    groups = 1,
    baseWidth = 64,
    dilation = 1,
    normLayer: NormLayer | null = null,
  ) {
    super();
    const norm = normLayer ?? defaultNormLayer;
    const width = Math.trunc(planes * (baseWidth / 64)) * groups;
    // Both this.conv2 and this.downsample layers downsample the input when stride != 1
    this.conv1 = this.addModule('conv1', conv1x1(inplanes, width));
    this.bn1 = this.addModule('bn1', norm(width));
    this.conv2 = this.addModule('conv2', conv3x3(width, width, stride, groups, dilation));
    this.bn2 = this.addModule('bn2', norm(width));
    this.conv3 = this.addModule('conv3', conv1x1(width, planes * Bottleneck.expansion));
    this.bn3 = this.addModule('bn3', norm(planes * Bottleneck.expansion));
    this.relu = this.addModule('relu', new ReLU());
    this.downsample = downsample ? this.addModule('downsample', downsample) : null;
    this.stride = stride;
  }

  get lastNorm(): Module {
    return this.bn3;
  }

  forward(x: Tensor): Tensor {
    let identity = x;

    let out = this.conv1.call(x);
    out = this.bn1.call(out);
    out = this.relu.call(out);

    out = this.conv2.call(out);
    out = this.bn2.call(out);
    out = this.relu.call(out);

    out = this.conv3.call(out);
    out = this.bn3.call(out);

    if (this.downsample) identity = this.downsample.call(x);

    out = F.add(out, identity);
    out = this.relu.call(out);

    return out;
  }

}

export interface ResNetOptions {
  numClasses?: number;
  zeroInitResidual?: boolean;
  groups?: number;
  widthPerGroup?: number;
  /** Each element says whether to replace layer2/3/4's 2x2 stride with a dilated convolution. */
  replaceStrideWithDilation?: readonly boolean[] | null;
  normLayer?: NormLayer | null;
  /** Channels of the input images, the ones conv1 takes: 3 (RGB) by default, 1 for grey images. */
  inChannels?: number;
  /** Seed for the initialisation; without one the process-wide generator is used (see manualSeed). */
  seed?: number;
}

export class ResNet extends Module {
  /** Its name in summaries and diagrams, kept through minifiers (which rename classes). */
  static readonly typeName = 'ResNet';
  private inplanes = 64;
  private dilation = 1;
  readonly groups: number;
  readonly baseWidth: number;
  readonly conv1: Conv2d;
  readonly bn1: Module;
  readonly relu: ReLU;
  readonly maxpool: MaxPool2d;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly layer4: Sequential;
  readonly avgpool: AdaptiveAvgPool2d;
  readonly fc: Linear;
  private readonly normLayer: NormLayer;

  constructor(block: BlockType, layers: readonly number[], options: ResNetOptions = {}) {
    super();
    const numClasses = options.numClasses ?? 1000;
    this.normLayer = options.normLayer ?? defaultNormLayer;
    const replaceStrideWithDilation = options.replaceStrideWithDilation ?? [false, false, false];
    if (replaceStrideWithDilation.length !== 3) {
      throw new RangeError(
        `replace_stride_with_dilation should be None or a 3-element tuple, got [${replaceStrideWithDilation.join(', ')}]`,
      );
    }
    if (layers.length !== 4 || layers.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new RangeError(`layers must be four positive block counts, got [${layers.join(', ')}]`);
    }
    this.groups = options.groups ?? 1;
    this.baseWidth = options.widthPerGroup ?? 64;
    const generator = options.seed === undefined ? getDefaultGenerator() : new Generator(options.seed);

    // Every parameter is initialised once, below, in torchvision's way.
    const endDeferral = deferInit();
    try {
      this.conv1 = this.addModule('conv1', new Conv2d(options.inChannels ?? 3, this.inplanes, 7, { stride: 2, padding: 3, bias: false }));
      this.bn1 = this.addModule('bn1', this.normLayer(this.inplanes));
      this.relu = this.addModule('relu', new ReLU());
      this.maxpool = this.addModule('maxpool', new MaxPool2d(3, { stride: 2, padding: 1 }));
      this.layer1 = this.addModule('layer1', this.makeLayer(block, 64, layers[0]));
      this.layer2 = this.addModule('layer2', this.makeLayer(block, 128, layers[1], 2, replaceStrideWithDilation[0]));
      this.layer3 = this.addModule('layer3', this.makeLayer(block, 256, layers[2], 2, replaceStrideWithDilation[1]));
      this.layer4 = this.addModule('layer4', this.makeLayer(block, 512, layers[3], 2, replaceStrideWithDilation[2]));
      this.avgpool = this.addModule('avgpool', new AdaptiveAvgPool2d([1, 1]));
      this.fc = this.addModule('fc', new Linear(512 * block.expansion, numClasses));
    } finally {
      endDeferral();
    }

    if (isInitSkipped()) return; // a strict load of every tensor comes next (pretrained builders)
    for (const m of this.modules()) {
      if (m instanceof Conv2d) {
        kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu', generator });
      } else if (m instanceof BatchNorm2d) {
        if (m.weight) constant_(m.weight, 1);
        if (m.bias) constant_(m.bias, 0);
      } else if (m instanceof Linear) {
        m.resetParameters(generator); // fc keeps torch's default Linear init
      }
    }

    // Zero-initialize the last BN in each residual branch, so that the residual branch
    // starts with zeros, and each residual block behaves like an identity.
    // This improves the model by 0.2~0.3% according to https://arxiv.org/abs/1706.02677
    if (options.zeroInitResidual) {
      for (const m of this.modules()) {
        if ((m instanceof Bottleneck || m instanceof BasicBlock) && m.lastNorm instanceof BatchNorm2d && m.lastNorm.weight) {
          constant_(m.lastNorm.weight, 0);
        }
      }
    }
  }

  makeLayer(block: BlockType, planes: number, blocks: number, stride = 1, dilate = false): Sequential {
    let downsample: Module | null = null;
    const previousDilation = this.dilation;
    if (dilate) {
      this.dilation *= stride;
      stride = 1;
    }
    if (stride !== 1 || this.inplanes !== planes * block.expansion) {
      downsample = new Sequential(conv1x1(this.inplanes, planes * block.expansion, stride), this.normLayer(planes * block.expansion));
    }

    const layers: Module[] = [];
    layers.push(new block(this.inplanes, planes, stride, downsample, this.groups, this.baseWidth, previousDilation, this.normLayer));
    this.inplanes = planes * block.expansion;
    for (let i = 1; i < blocks; i++) {
      layers.push(new block(this.inplanes, planes, 1, null, this.groups, this.baseWidth, this.dilation, this.normLayer));
    }
    return new Sequential(...layers);
  }

  forward(x: Tensor): Tensor {
    x = this.conv1.call(x);
    x = this.bn1.call(x);
    x = this.relu.call(x);
    x = this.maxpool.call(x);

    x = this.layer1.call(x);
    x = this.layer2.call(x);
    x = this.layer3.call(x);
    x = this.layer4.call(x);

    x = this.avgpool.call(x);
    x = F.flatten(x, 1);
    x = this.fc.call(x);

    return x;
  }
}
