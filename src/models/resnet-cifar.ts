// The CIFAR-10 ResNets of He et al. 2015 ("Deep Residual Learning for Image Recognition",
// §4.2): a 3×3 convolution to 16 channels, three stages of n basic blocks on 16, 32 and 64
// channels (maps of 32, 16 and 8 for a 32×32 input), global average pooling and a fully
// connected layer: 6n + 2 weighted layers, ResNet-20/32/44/56/110 for n = 3/5/7/9/18.
// Written as the common PyTorch implementation of the paper writes it, with torchvision's
// BasicBlock: the option-A shortcut (the identity subsampled and zero-padded, no parameters)
// is the block's downsample, so state dicts keep torchvision's names.

import type { Tensor } from '../core/tensor.js';
import { Generator, getDefaultGenerator } from '../core/rng.js';
import * as F from '../ops/functional.js';
import { constant_, kaimingNormal_, deferInit, isInitSkipped } from '../nn/init.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, ReLU, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { BasicBlock, conv3x3, type NormLayer, type ResNetOptions } from './resnet.js';

const defaultNormLayer: NormLayer = (numFeatures) => new BatchNorm2d(numFeatures);

/**
 * Option A of §3.3: "the shortcut still performs identity mapping, with extra zero entries
 * padded for increasing dimensions", taken with a stride of 2 where the map halves. As the
 * common implementation's LambdaLayer: x[:, :, ::2, ::2] with the new channels split evenly
 * in front and behind (planes/4 each when the channels double).
 */
export class ShortcutA extends Module {
  /** Its name in summaries and diagrams, kept through minifiers (which rename classes). */
  static readonly typeName = 'ShortcutA';
  readonly inPlanes: number;
  readonly planes: number;
  readonly stride: number;

  constructor(inPlanes: number, planes: number, stride: number) {
    super();
    if (planes < inPlanes) throw new RangeError(`option-A shortcut cannot reduce ${inPlanes} channels to ${planes}`);
    this.inPlanes = inPlanes;
    this.planes = planes;
    this.stride = stride;
  }

  forward(x: Tensor): Tensor {
    const before = Math.floor((this.planes - this.inPlanes) / 2);
    return F.subsamplePadChannels(x, this.stride, before, this.planes - this.inPlanes - before);
  }

  override extraRepr(): string {
    return `${this.inPlanes}, ${this.planes}, stride=${this.stride}`;
  }
}

export class CifarResNet extends Module {
  /** Its name in summaries and diagrams, kept through minifiers (which rename classes). */
  static readonly typeName = 'CifarResNet';
  private inplanes = 16;
  readonly conv1: Conv2d;
  readonly bn1: Module;
  readonly relu: ReLU;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly avgpool: AdaptiveAvgPool2d;
  readonly fc: Linear;
  private readonly normLayer: NormLayer;

  /** `layers`: the block count of each of the three stages (n, n, n in the paper). */
  constructor(layers: readonly number[], options: ResNetOptions = {}) {
    super();
    const numClasses = options.numClasses ?? 10;
    const inChannels = options.inChannels ?? 3;
    this.normLayer = options.normLayer ?? defaultNormLayer;
    if (layers.length !== 3 || layers.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new RangeError(`layers must be three positive block counts, got [${layers.join(', ')}]`);
    }
    if ((options.groups ?? 1) !== 1 || (options.widthPerGroup ?? 64) !== 64) {
      throw new RangeError('the CIFAR ResNets are built of BasicBlocks: groups=1 and width_per_group=64 only');
    }
    if (options.replaceStrideWithDilation?.some((d) => d)) throw new RangeError('the CIFAR ResNets do not replace strides with dilation');
    const generator = options.seed === undefined ? getDefaultGenerator() : new Generator(options.seed);

    const endDeferral = deferInit();
    try {
      this.conv1 = this.addModule('conv1', conv3x3(inChannels, 16));
      this.bn1 = this.addModule('bn1', this.normLayer(16));
      this.relu = this.addModule('relu', new ReLU());
      this.layer1 = this.addModule('layer1', this.makeLayer(16, layers[0]));
      this.layer2 = this.addModule('layer2', this.makeLayer(32, layers[1], 2));
      this.layer3 = this.addModule('layer3', this.makeLayer(64, layers[2], 2));
      this.avgpool = this.addModule('avgpool', new AdaptiveAvgPool2d([1, 1]));
      this.fc = this.addModule('fc', new Linear(64, numClasses));
    } finally {
      endDeferral();
    }

    if (isInitSkipped()) return;
    // The common implementation's _weights_init: He et al.'s normal initialisation (fan in)
    // for every convolution, BatchNorm at 1 and 0, fc with torch's default Linear init.
    for (const m of this.modules()) {
      if (m instanceof Conv2d) {
        kaimingNormal_(m.weight, { mode: 'fan_in', nonlinearity: 'relu', generator });
      } else if (m instanceof BatchNorm2d) {
        if (m.weight) constant_(m.weight, 1);
        if (m.bias) constant_(m.bias, 0);
      } else if (m instanceof Linear) {
        m.resetParameters(generator);
      }
    }
    if (options.zeroInitResidual) {
      for (const m of this.modules()) {
        if (m instanceof BasicBlock && m.lastNorm instanceof BatchNorm2d && m.lastNorm.weight) constant_(m.lastNorm.weight, 0);
      }
    }
  }

  makeLayer(planes: number, blocks: number, stride = 1): Sequential {
    const downsample = stride !== 1 || this.inplanes !== planes ? new ShortcutA(this.inplanes, planes, stride) : null;
    const layers: Module[] = [new BasicBlock(this.inplanes, planes, stride, downsample, 1, 64, 1, this.normLayer)];
    this.inplanes = planes;
    for (let i = 1; i < blocks; i++) layers.push(new BasicBlock(this.inplanes, planes, 1, null, 1, 64, 1, this.normLayer));
    return new Sequential(...layers);
  }

  forward(x: Tensor): Tensor {
    x = this.conv1.call(x);
    x = this.bn1.call(x);
    x = this.relu.call(x);

    x = this.layer1.call(x);
    x = this.layer2.call(x);
    x = this.layer3.call(x);

    x = this.avgpool.call(x);
    x = F.flatten(x, 1);
    x = this.fc.call(x);

    return x;
  }
}
