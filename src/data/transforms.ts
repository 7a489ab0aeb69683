// torchvision's transforms for training and evaluation, on 8-bit images (src/preprocess's
// Pixels, what PIL holds) and then on float32 [C, H, W] tensors: RandomResizedCrop, RandomCrop
// with zero padding, RandomHorizontalFlip, Resize, CenterCrop, Grayscale, ToTensor, Normalize,
// and the eval preset of a weights descriptor. Each follows torchvision 0.14 on PIL images:
// the same crop boxes for the same random numbers, PIL's antialiased bilinear resize, float32
// rounding as torch rounds. Randomness comes from a Generator (src/core/rng.ts) the caller
// passes, so a data loader can give each sample its own seeded stream. Plain TypeScript.

import { Tensor } from '../core/tensor.js';
import type { Generator } from '../core/rng.js';
import { checkPixels, type Pixels } from '../preprocess/image.js';
import { resizeBilinear } from '../preprocess/resize.js';
import { ImageClassification, type ImageClassificationOptions, centerCrop, resizeShorterSide, roundHalfEven, IMAGENET_MEAN, IMAGENET_STD } from '../preprocess/transforms.js';

/** A step of a pipeline: `apply` maps one sample's image, drawing any randomness from `generator`. */
export interface Transform<I, O> {
  apply(input: I, generator: Generator): O;
}

/** An image of a data set before ToTensor (8-bit HWC) or after it ([C, H, W] float32). */
export type Image = Pixels | Tensor;

/** torchvision's Compose: the transforms in order, each taking the previous one's output. */
export class Compose<I = Image, O = Tensor> implements Transform<I, O> {
  // Each step's output type is the next one's input; the list holds them type-erased.
  readonly transforms: readonly Transform<unknown, unknown>[];

  constructor(transforms: readonly Transform<never, unknown>[]) {
    this.transforms = transforms as readonly Transform<unknown, unknown>[];
  }

  apply(input: I, generator: Generator): O {
    let x: unknown = input;
    for (const t of this.transforms) x = t.apply(x, generator);
    return x as O;
  }
}

/** A crop box as torchvision's get_params return it: top row, left column, height, width. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** torch.randint(low, high, (1,)) from a uniform u in [0, 1). */
function randint(low: number, high: number, u: number): number {
  return low + Math.floor(u * (high - low));
}

/** torch.empty(1).uniform_(low, high).item(): float32. */
function uniformFloat32(low: number, high: number, u: number): number {
  return Math.fround(low + (high - low) * u);
}

/**
 * torchvision's RandomResizedCrop.get_params for an image of width × height: up to 10 tries of
 * an area fraction in `scale` and a log-uniform aspect ratio in `ratio`, the first box that fits
 * placed uniformly; else the center crop of the ratio nearest the image's. `random` gives the
 * uniform numbers in [0, 1) torch's generator would (two per try, two more for the placement).
 */
export function randomResizedCropBox(
  width: number, height: number, scale: readonly [number, number], ratio: readonly [number, number], random: () => number,
): CropBox {
  const area = height * width;
  // torch.log(torch.tensor(ratio)): float32.
  const logRatio = [Math.fround(Math.log(Math.fround(ratio[0]))), Math.fround(Math.log(Math.fround(ratio[1])))];
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * uniformFloat32(scale[0], scale[1], random());
    const aspectRatio = Math.fround(Math.exp(uniformFloat32(logRatio[0], logRatio[1], random())));
    const w = roundHalfEven(Math.sqrt(targetArea * aspectRatio));
    const h = roundHalfEven(Math.sqrt(targetArea / aspectRatio));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = randint(0, height - h + 1, random());
      const left = randint(0, width - w + 1, random());
      return { top, left, height: h, width: w };
    }
  }
  // Fallback to central crop
  const inRatio = width / height;
  const minRatio = Math.min(ratio[0], ratio[1]);
  const maxRatio = Math.max(ratio[0], ratio[1]);
  let w: number;
  let h: number;
  if (inRatio < minRatio) {
    w = width;
    h = roundHalfEven(w / minRatio);
  } else if (inRatio > maxRatio) {
    h = height;
    w = roundHalfEven(h * maxRatio);
  } else {
    w = width;
    h = height;
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/**
 * The `box` of `image` (which may reach past its edges: those pixels are 0, as F.pad's
 * constant fill), as PIL's Image.crop gives it.
 */
export function crop(image: Pixels, box: CropBox): Pixels {
  checkPixels(image);
  const { width, height, channels: c, data } = image;
  const out = new Uint8Array(box.width * box.height * c);
  const x0 = Math.max(0, -box.left);
  const x1 = Math.min(box.width, width - box.left);
  for (let y = 0; y < box.height; y++) {
    const sy = box.top + y;
    if (sy < 0 || sy >= height || x1 <= x0) continue;
    const from = (sy * width + box.left + x0) * c;
    out.set(data.subarray(from, from + (x1 - x0) * c), (y * box.width + x0) * c);
  }
  return { width: box.width, height: box.height, channels: c, data: out };
}

type Size = number | readonly [number, number];

/** (height, width) of a size given as one number (square) or [height, width], as torchvision's. */
function sizePair(size: Size, what: string): [number, number] {
  const [h, w] = typeof size === 'number' ? [size, size] : size;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) throw new RangeError(`${what}: size must be positive integers, got ${String(size)}`);
  return [h, w];
}

export interface RandomResizedCropOptions {
  /** Range of the crop's area as a fraction of the image's; (0.08, 1) by default. */
  scale?: readonly [number, number];
  /** Range of the crop's aspect ratio (width / height); (3/4, 4/3) by default. */
  ratio?: readonly [number, number];
}

/** torchvision's RandomResizedCrop(size, scale, ratio) with bilinear interpolation (PIL's, antialiased). */
export class RandomResizedCrop implements Transform<Pixels, Pixels> {
  readonly size: [number, number];
  readonly scale: readonly [number, number];
  readonly ratio: readonly [number, number];

  constructor(size: Size, options: RandomResizedCropOptions = {}) {
    this.size = sizePair(size, 'RandomResizedCrop');
    this.scale = options.scale ?? [0.08, 1];
    this.ratio = options.ratio ?? [3 / 4, 4 / 3];
    if (this.scale[0] > this.scale[1] || this.ratio[0] > this.ratio[1]) throw new RangeError('RandomResizedCrop: scale and ratio should be of kind (min, max)');
  }

  apply(image: Pixels, generator: Generator): Pixels {
    const box = randomResizedCropBox(image.width, image.height, this.scale, this.ratio, () => generator.random());
    return resizeBilinear(crop(image, box), this.size[1], this.size[0]);
  }
}

/** torchvision's RandomCrop.get_params: a uniform placement of a height × width crop, none when the sizes are equal. */
export function randomCropBox(width: number, height: number, cropHeight: number, cropWidth: number, random: () => number): CropBox {
  if (height < cropHeight || width < cropWidth) {
    throw new RangeError(`Required crop size (${cropHeight}, ${cropWidth}) is larger than input image size (${height}, ${width})`);
  }
  if (width === cropWidth && height === cropHeight) return { top: 0, left: 0, height, width };
  const top = randint(0, height - cropHeight + 1, random());
  const left = randint(0, width - cropWidth + 1, random());
  return { top, left, height: cropHeight, width: cropWidth };
}

/** torchvision's RandomCrop(size, padding): zero padding on every side, then a random crop. */
export class RandomCrop implements Transform<Pixels, Pixels> {
  readonly size: [number, number];
  readonly padding: number;

  constructor(size: Size, options: { padding?: number } = {}) {
    this.size = sizePair(size, 'RandomCrop');
    this.padding = options.padding ?? 0;
    if (!Number.isInteger(this.padding) || this.padding < 0) throw new RangeError(`RandomCrop: padding must be a non-negative integer, got ${this.padding}`);
  }

  apply(image: Pixels, generator: Generator): Pixels {
    const p = this.padding;
    const box = randomCropBox(image.width + 2 * p, image.height + 2 * p, this.size[0], this.size[1], () => generator.random());
    // The crop of the padded image is a crop of the image shifted by the padding.
    return crop(image, { ...box, top: box.top - p, left: box.left - p });
  }
}

/** The image mirrored left to right (F.hflip). */
export function hflip(image: Pixels): Pixels {
  checkPixels(image);
  const { width, height, channels: c, data } = image;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    const row = y * width * c;
    for (let x = 0; x < width; x++) {
      const from = row + x * c;
      const to = row + (width - 1 - x) * c;
      for (let k = 0; k < c; k++) out[to + k] = data[from + k];
    }
  }
  return { width, height, channels: c, data: out };
}

/** torchvision's RandomHorizontalFlip(p): flips when torch.rand(1) < p. */
export class RandomHorizontalFlip implements Transform<Pixels, Pixels> {
  constructor(readonly p = 0.5) {}

  apply(image: Pixels, generator: Generator): Pixels {
    return generator.random() < this.p ? hflip(image) : image;
  }
}

/** torchvision's Resize(size): an int resizes the shorter side to it, [height, width] resizes to that. */
export class Resize implements Transform<Pixels, Pixels> {
  constructor(readonly size: Size) {
    sizePair(size, 'Resize');
  }

  apply(image: Pixels): Pixels {
    if (typeof this.size === 'number') return resizeShorterSide(image, this.size);
    return resizeBilinear(image, this.size[1], this.size[0]);
  }
}

/** torchvision's CenterCrop(size), zero-padding an image smaller than the crop. */
export class CenterCrop implements Transform<Pixels, Pixels> {
  readonly size: [number, number];

  constructor(size: Size) {
    this.size = sizePair(size, 'CenterCrop');
  }

  apply(image: Pixels): Pixels {
    return centerCrop(image, this.size[1], this.size[0]);
  }
}

/**
 * torchvision's Grayscale(numOutputChannels) on a PIL image: convert('L') (ITU-R 601-2 luma,
 * L = (19595 R + 38470 G + 7471 B + 2^15) >> 16, PIL's integer formula), copied into 3
 * channels when asked. Grey images pass through.
 */
export class Grayscale implements Transform<Pixels, Pixels> {
  constructor(readonly numOutputChannels: 1 | 3 = 1) {}

  apply(image: Pixels): Pixels {
    checkPixels(image);
    const { width, height, channels, data } = image;
    const n = width * height;
    const out = new Uint8Array(n * this.numOutputChannels);
    for (let i = 0; i < n; i++) {
      const v = channels <= 2
        ? data[i * channels]
        : (data[i * channels] * 19595 + data[i * channels + 1] * 38470 + data[i * channels + 2] * 7471 + 0x8000) >>> 16;
      for (let k = 0; k < this.numOutputChannels; k++) out[i * this.numOutputChannels + k] = v;
    }
    return { width, height, channels: this.numOutputChannels, data: out };
  }
}

/**
 * torchvision's ToTensor on an 8-bit image: [C, H, W] float32 of v / 255 (rounded to float32 as
 * torch divides). Grey stays one channel; grey + alpha and RGBA keep their alpha, as PIL's modes do.
 */
export function pixelsToTensor(image: Pixels): Tensor {
  checkPixels(image);
  const { width, height, channels: c, data } = image;
  const plane = width * height;
  const out = new Float32Array(c * plane);
  for (let k = 0; k < c; k++) {
    for (let i = 0; i < plane; i++) out[k * plane + i] = data[i * c + k] / 255;
  }
  return new Tensor(out, [c, height, width]);
}

export class ToTensor implements Transform<Pixels, Tensor> {
  apply(image: Pixels): Tensor {
    return pixelsToTensor(image);
  }
}

/** torchvision's Normalize(mean, std) on a [C, H, W] tensor: (x − mean[c]) / std[c], each step in float32. */
export class Normalize implements Transform<Tensor, Tensor> {
  readonly mean: readonly number[];
  readonly std: readonly number[];

  constructor(mean: readonly number[], std: readonly number[]) {
    if (mean.length !== std.length || mean.length === 0 || std.some((s) => s === 0)) {
      throw new RangeError('Normalize: mean and std need one value per channel, std non-zero');
    }
    this.mean = mean.map(Math.fround);
    this.std = std.map(Math.fround);
  }

  apply(x: Tensor): Tensor {
    if (x.ndim !== 3 || x.dtype !== 'float32') throw new RangeError(`Normalize: expected a float32 [C, H, W] tensor, got ${x}`);
    const [channels, height, width] = x.shape;
    if (channels !== this.mean.length) throw new RangeError(`Normalize: ${this.mean.length} means for a tensor of ${channels} channels`);
    const plane = height * width;
    const src = x.f32;
    const out = new Float32Array(src.length);
    for (let c = 0; c < channels; c++) {
      const m = this.mean[c];
      const s = this.std[c];
      for (let i = c * plane; i < (c + 1) * plane; i++) out[i] = Math.fround(src[i] - m) / s;
    }
    return new Tensor(out, x.shape);
  }
}

/**
 * The eval transform of a weights preset (torchvision's ImageClassification: resize the shorter
 * side, center crop, ToTensor, Normalize), on any image PIL would convert to RGB: an
 * ImageClassification, or its options (a weights descriptor's `transforms`). With none,
 * torchvision's ResNet preset: 256, 224, ImageNet's mean and std.
 */
export function presetTransform(options: ImageClassification | ImageClassificationOptions = {}): Transform<Pixels, Tensor> {
  const preset = options instanceof ImageClassification ? options : new ImageClassification(options);
  return new Compose<Pixels, Tensor>([
    { apply: (image: Pixels) => preset.resizeAndCrop(image) },
    new ToTensor(),
    new Normalize(preset.mean, preset.std),
  ]);
}

/**
 * torchvision's ImageNet training recipe for a ResNet (references/classification/presets.py):
 * RandomResizedCrop(cropSize), RandomHorizontalFlip, ToTensor, Normalize(ImageNet).
 */
export function trainTransform(cropSize = 224, options: { mean?: readonly number[]; std?: readonly number[] } = {}): Compose<Pixels, Tensor> {
  return new Compose<Pixels, Tensor>([
    new RandomResizedCrop(cropSize),
    new RandomHorizontalFlip(),
    new ToTensor(),
    new Normalize(options.mean ?? IMAGENET_MEAN, options.std ?? IMAGENET_STD),
  ]);
}
