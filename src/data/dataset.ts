// What a data set is to the data loader (torch.utils.data's map-style Dataset): a length, and
// the sample at an index, now or as a Promise (files decoded on libuv's threads), with its
// class index. TensorDataset serves images already in memory.

import { Tensor, shapeToString } from '../core/tensor.js';
import { Generator, getDefaultGenerator } from '../core/rng.js';
import type { Image, Transform } from './transforms.js';

/** One labelled image: the image (8-bit pixels, or a [C, H, W] float32 tensor) and its class index. */
export interface Sample<X = Image> {
  image: X;
  target: number;
}

/**
 * A map-style data set. `get` applies the data set's own transform, if any, drawing its random
 * numbers from `generator` (the loader passes one per sample, seeded; torch's global generator
 * stands in for it otherwise).
 */
export interface Dataset<X = Image> {
  readonly length: number;
  /** Class names by index, where the data set has them (ImageFolder's folder names). */
  readonly classes?: readonly string[];
  get(index: number, generator?: Generator): Sample<X> | Promise<Sample<X>>;
}

/** The error for an index outside [0, length). */
export function checkIndex(index: number, length: number, what: string): void {
  if (!Number.isSafeInteger(index) || index < 0 || index >= length) throw new RangeError(`${what}: index ${index} is out of range for ${length} samples`);
}

/** Applies `transform` to a sample's image, with `generator` or the process-wide one. */
export function transformSample<I, O>(sample: Sample<I>, transform: Transform<I, O>, generator?: Generator): Sample<O> {
  return { image: transform.apply(sample.image, generator ?? getDefaultGenerator()), target: sample.target };
}

/** Class indices given as a tensor (int64 or float32 holding integers) or a plain array. */
export type Targets = Tensor | Int32Array | readonly number[];

function targetArray(targets: Targets): Int32Array {
  if (targets instanceof Int32Array) return targets;
  if (!(targets instanceof Tensor)) return Int32Array.from(targets);
  if (targets.ndim !== 1) throw new RangeError(`targets must be 1-D, got shape ${shapeToString(targets.shape)}`);
  return Int32Array.from(targets.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/**
 * torch's TensorDataset for classification: images (N, C, H, W) float32 and N class indices;
 * sample i is images[i] as a [C, H, W] tensor (a copy) and targets[i].
 */
export class TensorDataset<X = Tensor> implements Dataset<X> {
  readonly images: Tensor;
  readonly targets: Int32Array;
  readonly classes?: readonly string[];
  readonly transform: Transform<Tensor, X> | null;

  constructor(images: Tensor, targets: Targets, options: { transform?: Transform<Tensor, X>; classes?: readonly string[] } = {}) {
    if (images.ndim !== 4 || images.dtype !== 'float32') throw new RangeError(`TensorDataset: images must be float32 (N, C, H, W), got ${images}`);
    this.images = images;
    this.targets = targetArray(targets);
    if (this.targets.length !== images.shape[0]) {
      throw new RangeError(`TensorDataset: ${images.shape[0]} images but ${this.targets.length} targets`);
    }
    this.transform = options.transform ?? null;
    this.classes = options.classes;
  }

  get length(): number {
    return this.targets.length;
  }

  get(index: number, generator?: Generator): Sample<X> {
    checkIndex(index, this.length, 'TensorDataset');
    const [, c, h, w] = this.images.shape;
    const size = c * h * w;
    const image = new Tensor(this.images.f32.slice(index * size, (index + 1) * size), [c, h, w]);
    const sample = { image, target: this.targets[index] };
    return this.transform ? transformSample(sample, this.transform, generator) : (sample as Sample<unknown> as Sample<X>);
  }
}

/** 0 … n−1 in the order of a Fisher–Yates shuffle drawing from `generator` (torch.randperm's role). */
export function permutation(n: number, generator: Generator): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(generator.random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** torch's Subset: the samples of `dataset` at `indices`, in that order (a validation split, say). */
export class Subset<X = Image> implements Dataset<X> {
  readonly dataset: Dataset<X>;
  readonly indices: Int32Array;

  constructor(dataset: Dataset<X>, indices: ArrayLike<number>) {
    this.dataset = dataset;
    this.indices = Int32Array.from(indices);
    for (const i of this.indices) checkIndex(i, dataset.length, 'Subset');
  }

  get length(): number {
    return this.indices.length;
  }

  get classes(): readonly string[] | undefined {
    return this.dataset.classes;
  }

  get(index: number, generator?: Generator): Sample<X> | Promise<Sample<X>> {
    checkIndex(index, this.length, 'Subset');
    return this.dataset.get(this.indices[index], generator);
  }
}

/**
 * torch's random_split: `dataset` cut into subsets of the given lengths (counts summing to its
 * length) after a seeded shuffle; the same seed gives the same split.
 */
export function randomSplit<X>(dataset: Dataset<X>, lengths: readonly number[], seed = 0): Subset<X>[] {
  const total = lengths.reduce((a, b) => a + b, 0);
  if (lengths.some((n) => !Number.isSafeInteger(n) || n < 0) || total !== dataset.length) {
    throw new RangeError(`randomSplit: lengths [${lengths.join(', ')}] must be counts summing to the data set's ${dataset.length}`);
  }
  const order = permutation(total, new Generator(seed));
  let start = 0;
  return lengths.map((n) => new Subset(dataset, order.subarray(start, (start += n))));
}
