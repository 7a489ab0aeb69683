// Parameter initialisers with torch.nn.init's formulas, drawing from a seedable Generator.

import type { Tensor } from '../core/tensor.js';
import { getDefaultGenerator, type Generator } from '../core/rng.js';

/** torch's fan computation: fan_in = size(1) * receptive field, fan_out = size(0) * receptive field. */
export function calculateFans(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.ndim < 2) throw new RangeError(`fan in and fan out cannot be computed for a tensor with fewer than 2 dimensions (${t})`);
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: t.shape[1] * receptive, fanOut: t.shape[0] * receptive };
}

export type Nonlinearity = 'relu' | 'leaky_relu' | 'linear';

/** torch.nn.init.calculate_gain for the nonlinearities ResNet uses. */
export function calculateGain(nonlinearity: Nonlinearity, param = 0.01): number {
  switch (nonlinearity) {
    case 'linear':
      return 1;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu':
      return Math.sqrt(2 / (1 + param * param));
  }
}

export function uniform_(t: Tensor, low: number, high: number, generator: Generator = getDefaultGenerator()): Tensor {
  const data = t.f32;
  for (let i = 0; i < data.length; i++) data[i] = generator.uniform(low, high);
  return t.bumpVersion();
}

export function normal_(t: Tensor, mean: number, std: number, generator: Generator = getDefaultGenerator()): Tensor {
  const data = t.f32;
  for (let i = 0; i < data.length; i++) data[i] = mean + std * generator.normal();
  return t.bumpVersion();
}

export function constant_(t: Tensor, value: number): Tensor {
  return t.fill_(value);
}

export interface KaimingOptions {
  a?: number;
  mode?: 'fan_in' | 'fan_out';
  nonlinearity?: Nonlinearity;
  generator?: Generator;
}

/** He et al. 2015: normal with std = gain / sqrt(fan). */
export function kaimingNormal_(t: Tensor, options: KaimingOptions = {}): Tensor {
  const std = kaimingStd(t, options);
  return normal_(t, 0, std, options.generator);
}

/** He et al. 2015: uniform in ±gain * sqrt(3 / fan). */
export function kaimingUniform_(t: Tensor, options: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, options);
  return uniform_(t, -bound, bound, options.generator);
}

function kaimingStd(t: Tensor, options: KaimingOptions): number {
  const { fanIn, fanOut } = calculateFans(t);
  const fan = (options.mode ?? 'fan_in') === 'fan_in' ? fanIn : fanOut;
  const gain = calculateGain(options.nonlinearity ?? 'leaky_relu', options.a ?? 0);
  return gain / Math.sqrt(fan);
}

/** A nestable "while" flag: begin() raises it until the function it returns is called (once). */
function scopedFlag(): { begin: () => () => void; active: () => boolean } {
  let depth = 0;
  return {
    begin: () => {
      depth++;
      let ended = false;
      return () => {
        if (!ended) depth--;
        ended = true;
      };
    },
    active: () => depth > 0,
  };
}

const deferred = scopedFlag();
const skipped = scopedFlag();

/**
 * Skips the layers' own default initialisation until the returned function is called, for
 * a model that initialises every parameter itself afterwards (ResNet does), so nothing is
 * drawn twice. Call the returned function in a `finally`.
 */
export function deferInit(): () => void {
  return deferred.begin();
}

export function isInitDeferred(): boolean {
  return deferred.active();
}

/**
 * Models built until the returned function is called skip their own initialisation too
 * (deferInit skips only the layers'): for a model whose every tensor a strict load replaces
 * next, such as a builder's with pretrained weights. Parameters stay zero until then.
 */
export function skipInit(): () => void {
  return skipped.begin();
}

export function isInitSkipped(): boolean {
  return skipped.active();
}

/**
 * The default init of torch's Conv2d and Linear (reset_parameters): kaiming-uniform with
 * a = sqrt(5) for the weight, i.e. U(±1/sqrt(fan_in)), and the bias U(±1/sqrt(fan_in)).
 */
export function defaultLayerInit(weight: Tensor, bias: Tensor | null, generator?: Generator): void {
  kaimingUniform_(weight, { a: Math.sqrt(5), generator });
  if (bias) {
    const { fanIn } = calculateFans(weight);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform_(bias, -bound, bound, generator);
  }
}
