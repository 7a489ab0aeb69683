// The layers a ResNet is built from, with torch.nn's names, arguments, parameter and
// buffer names and default initialisation.

import { Tensor } from '../core/tensor.js';
import type { Generator } from '../core/rng.js';
import * as F from '../ops/functional.js';
import { defaultLayerInit, isInitDeferred } from './init.js';
import { Module } from './module.js';

type IntOrPair = number | readonly [number, number];

function pair(v: IntOrPair): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

function checkPositiveInt(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${what} must be a positive integer, got ${value}`);
}

export interface Conv2dOptions {
  stride?: IntOrPair;
  padding?: IntOrPair;
  dilation?: IntOrPair;
  groups?: number;
  bias?: boolean;
  generator?: Generator;
}

export class Conv2d extends Module {
  /** Its name in summaries and diagrams, kept through minifiers (which rename classes). */
  static readonly typeName = 'Conv2d';
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(inChannels: number, outChannels: number, kernelSize: IntOrPair, options: Conv2dOptions = {}) {
    super();
    this.groups = options.groups ?? 1;
    checkPositiveInt(inChannels, 'in_channels');
    checkPositiveInt(outChannels, 'out_channels');
    checkPositiveInt(this.groups, 'groups');
    if (inChannels % this.groups !== 0) throw new RangeError('in_channels must be divisible by groups');
    if (outChannels % this.groups !== 0) throw new RangeError('out_channels must be divisible by groups');
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair(kernelSize);
    this.stride = pair(options.stride ?? 1);
    this.padding = pair(options.padding ?? 0);
    this.dilation = pair(options.dilation ?? 1);
    F.checkWindowArgs('Conv2d', this.kernelSize, this.stride, this.padding, this.dilation);
    this.weight = this.addParameter('weight', Tensor.zeros([outChannels, inChannels / this.groups, ...this.kernelSize]));
    this.bias = options.bias ?? true ? this.addParameter('bias', Tensor.zeros([outChannels])) : null;
    if (!isInitDeferred()) this.resetParameters(options.generator);
  }

  /** torch's Conv2d.reset_parameters: kaiming-uniform(a=√5) weight, uniform bias. */
  resetParameters(generator?: Generator): void {
    defaultLayerInit(this.weight, this.bias, generator);
  }

  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }

  override extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=(${this.kernelSize.join(', ')}), stride=(${this.stride.join(', ')})`;
    if (this.padding.some((p) => p !== 0)) s += `, padding=(${this.padding.join(', ')})`;
    if (this.dilation.some((d) => d !== 1)) s += `, dilation=(${this.dilation.join(', ')})`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (!this.bias) s += ', bias=False';
    return s;
  }
}

export interface BatchNorm2dOptions {
  eps?: number;
  momentum?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}

export class BatchNorm2d extends Module {
  /** Its name in summaries and diagrams, kept through minifiers (which rename classes). */
  static readonly typeName = 'BatchNorm2d';
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  readonly numBatchesTracked: Tensor | null;

  constructor(numFeatures: number, options: BatchNorm2dOptions = {}) {
    super();
    checkPositiveInt(numFeatures, 'num_features');
    this.numFeatures = numFeatures;
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    const affine = options.affine ?? true;
    this.weight = affine ? this.addParameter('weight', Tensor.full([numFeatures], 1)) : null;
    this.bias = affine ? this.addParameter('bias', Tensor.zeros([numFeatures])) : null;
    const track = options.trackRunningStats ?? true;
    this.runningMean = track ? this.addBuffer('running_mean', Tensor.zeros([numFeatures])) : null;
    this.runningVar = track ? this.addBuffer('running_var', Tensor.full([numFeatures], 1)) : null;
    this.numBatchesTracked = track ? this.addBuffer('num_batches_tracked', Tensor.int64Scalar(0)) : null;
  }

  forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new F.ShapeError(`BatchNorm2d: expected 4D input (got ${x.ndim}D input)`);
    if (this.training && this.numBatchesTracked) {
      const count = this.numBatchesTracked.data as BigInt64Array;
      count[0] += 1n;
      this.numBatchesTracked.bumpVersion();
    }
    return F.batchNorm2d(x, {
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      weight: this.weight,
      bias: this.bias,
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
    });
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.weight !== null}, track_running_stats=${this.runningMean !== null}`;
  }
}

export class ReLU extends Module {
  /** Its name in summaries and diagrams, kept through minifiers (which rename classes). */
  static readonly typeName = 'ReLU';
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}

export class Identity extends Module {
  /** Its name in summaries and diagrams, kept through minifiers (which rename classes). */
  static readonly typeName = 'Identity';
  forward(x: Tensor): Tensor {
    return x;
  }
}

export interface MaxPool2dOptions {
  stride?: IntOrPair;
  padding?: IntOrPair;
  dilation?: IntOrPair;
}

export class MaxPool2d extends Module {
  /** Its name in summaries and diagrams, kept through minifiers (which rename classes). */
  static readonly typeName = 'MaxPool2d';
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];

  constructor(kernelSize: IntOrPair, options: MaxPool2dOptions = {}) {
    super();
    this.kernelSize = pair(kernelSize);
    this.stride = pair(options.stride ?? kernelSize);
    this.padding = pair(options.padding ?? 0);
    this.dilation = pair(options.dilation ?? 1);
    F.checkWindowArgs('MaxPool2d', this.kernelSize, this.stride, this.padding, this.dilation);
  }

  forward(x: Tensor): Tensor {
    return F.maxPool2d(x, { kernel: this.kernelSize, stride: this.stride, padding: this.padding, dilation: this.dilation });
  }

  override extraRepr(): string {
    return `kernel_size=${this.kernelSize[0]}, stride=${this.stride[0]}, padding=${this.padding[0]}, dilation=${this.dilation[0]}`;
  }
}

export class AdaptiveAvgPool2d extends Module {
  /** Its name in summaries and diagrams, kept through minifiers (which rename classes). */
  static readonly typeName = 'AdaptiveAvgPool2d';
  readonly outputSize: [number, number];

  constructor(outputSize: IntOrPair) {
    super();
    this.outputSize = pair(outputSize);
  }

  forward(x: Tensor): Tensor {
    return F.adaptiveAvgPool2d(x, this.outputSize);
  }

  override extraRepr(): string {
    return `output_size=(${this.outputSize.join(', ')})`;
  }
}

export class Flatten extends Module {
  /** Its name in summaries and diagrams, kept through minifiers (which rename classes). */
  static readonly typeName = 'Flatten';
  constructor(readonly startDim = 1) {
    super();
  }

  forward(x: Tensor): Tensor {
    return F.flatten(x, this.startDim);
  }
}

export class Linear extends Module {
  /** Its name in summaries and diagrams, kept through minifiers (which rename classes). */
  static readonly typeName = 'Linear';
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, options: { bias?: boolean; generator?: Generator } = {}) {
    super();
    checkPositiveInt(inFeatures, 'in_features');
    checkPositiveInt(outFeatures, 'out_features');
    this.weight = this.addParameter('weight', Tensor.zeros([outFeatures, inFeatures]));
    this.bias = options.bias ?? true ? this.addParameter('bias', Tensor.zeros([outFeatures])) : null;
    if (!isInitDeferred()) this.resetParameters(options.generator);
  }

  /** torch's Linear.reset_parameters: kaiming-uniform(a=√5) weight, uniform bias. */
  resetParameters(generator?: Generator): void {
    defaultLayerInit(this.weight, this.bias, generator);
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }

  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}

/** Children named '0', '1', … run in order, as torch.nn.Sequential. */
export class Sequential extends Module {
  /** Its name in summaries and diagrams, kept through minifiers (which rename classes). */
  static readonly typeName = 'Sequential';
  readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers.map((m, i) => this.addModule(String(i), m));
  }

  get length(): number {
    return this.layers.length;
  }

  at(index: number): Module {
    const m = this.layers.at(index);
    if (!m) throw new RangeError(`index ${index} is out of range for Sequential of length ${this.layers.length}`);
    return m;
  }

  forward(x: Tensor): Tensor {
    let out = x;
    for (const layer of this.layers) out = layer.call(out);
    return out;
  }
}
