// torchvision's ImageClassification preset (transforms/_presets.py) as applied to a PIL image:
// resize the shorter side with antialiased bilinear interpolation, center-crop, scale to [0, 1],
// normalise with the ImageNet mean and std, giving the NCHW float32 tensor a ResNet takes.
// Each step follows torchvision 0.14's arithmetic (sizes, crop offsets, float32 rounding), so the
// tensors equal torchvision's for the same decoded pixels. Plain TypeScript: usable in browsers.

import { Tensor } from '../core/tensor.js';
import { checkPixels, toRgb, type Pixels, type RgbImage } from './image.js';
import { resizeBilinear } from './resize.js';

/** ImageNet's per-channel mean and std (RGB), the `mean` and `std` of every torchvision ResNet preset. */
export const IMAGENET_MEAN: readonly number[] = Object.freeze([0.485, 0.456, 0.406]);
export const IMAGENET_STD: readonly number[] = Object.freeze([0.229, 0.224, 0.225]);

/**
 * Python's round() on a float: halves go to the even neighbour (round(16.5) == 16), unlike
 * Math.round. torchvision rounds the center crop's offsets with it.
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The [width, height] torchvision's Resize(size) gives an image of width × height: the shorter side
 * becomes `size` and the longer one int(size · long / short), truncated as Python's int() does.
 */
export function resizedSize(width: number, height: number, size: number): [number, number] {
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((size * long) / short);
  return width <= height ? [size, newLong] : [newLong, size];
}

/** torchvision's F.resize(img, [size], BILINEAR) on a PIL image: the shorter side becomes `size`. */
export function resizeShorterSide(image: Pixels, size: number): Pixels {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`resize size must be a positive integer, got ${size}`);
  const [width, height] = resizedSize(image.width, image.height, size);
  return width === image.width && height === image.height ? image : resizeBilinear(image, width, height);
}

/** The rows and columns center_crop keeps, and the zero padding it adds first when the crop is larger. */
export interface CropPlan {
  /** Zeros added on each side before cropping: torchvision pads the smaller dimension so the crop fits. */
  readonly padLeft: number;
  readonly padTop: number;
  /** The crop's top-left corner in the padded image. */
  readonly top: number;
  readonly left: number;
}

/** torchvision 0.14's F.center_crop arithmetic for an image of width × height. */
export function centerCropPlan(width: number, height: number, cropWidth: number, cropHeight: number): CropPlan {
  // (crop - size) // 2 on the left/top, the rest on the right/bottom, as padding_ltrb does.
  const padLeft = cropWidth > width ? Math.floor((cropWidth - width) / 2) : 0;
  const padTop = cropHeight > height ? Math.floor((cropHeight - height) / 2) : 0;
  const paddedWidth = Math.max(width, cropWidth);
  const paddedHeight = Math.max(height, cropHeight);
  return {
    padLeft,
    padTop,
    top: roundHalfEven((paddedHeight - cropHeight) / 2),
    left: roundHalfEven((paddedWidth - cropWidth) / 2),
  };
}

/** torchvision's F.center_crop(img, [cropHeight, cropWidth]) on a PIL image, padding with zeros if needed. */
export function centerCrop(image: Pixels, cropWidth: number, cropHeight: number = cropWidth): Pixels {
  checkPixels(image);
  if (!Number.isInteger(cropWidth) || !Number.isInteger(cropHeight) || cropWidth < 1 || cropHeight < 1) {
    throw new RangeError(`crop size must be positive integers, got ${cropWidth}x${cropHeight}`);
  }
  const { width, height, channels: c, data } = image;
  const plan = centerCropPlan(width, height, cropWidth, cropHeight);
  const out = new Uint8Array(cropWidth * cropHeight * c);
  // Output (y, x) reads input (y + top - padTop, x + left - padLeft); outside the image it stays 0.
  const dy = plan.top - plan.padTop;
  const dx = plan.left - plan.padLeft;
  const x0 = Math.max(0, -dx);
  const x1 = Math.min(cropWidth, width - dx);
  for (let y = 0; y < cropHeight; y++) {
    const sy = y + dy;
    if (sy < 0 || sy >= height || x1 <= x0) continue;
    const from = (sy * width + x0 + dx) * c;
    out.set(data.subarray(from, from + (x1 - x0) * c), (y * cropWidth + x0) * c);
  }
  return { width: cropWidth, height: cropHeight, channels: c, data: out };
}

/**
 * RGB images of one size → an NCHW float32 tensor [N, 3, H, W] of (v / 255 - mean) / std, each
 * operation rounded to float32 as torch's convert_image_dtype and normalize round it (bit-exact).
 * Without mean and std it is torch's v / 255 alone (values in [0, 1]).
 */
export function toTensor(images: readonly RgbImage[], mean?: readonly number[], std?: readonly number[]): Tensor {
  if (images.length === 0) throw new RangeError('toTensor needs at least one image');
  const { width, height } = images[0];
  const plane = width * height;
  const out = new Float32Array(images.length * 3 * plane);
  const m = [0, 1, 2].map((c) => Math.fround(mean?.[c] ?? 0));
  const s = [0, 1, 2].map((c) => Math.fround(std?.[c] ?? 1));
  images.forEach((image, n) => {
    checkPixels(image);
    if (image.channels !== 3) throw new RangeError(`toTensor needs RGB images, got ${image.channels} channels`);
    if (image.width !== width || image.height !== height) {
      throw new RangeError(`images in a batch must have one size: ${image.width}x${image.height} vs ${width}x${height}`);
    }
    for (let c = 0; c < 3; c++) {
      const base = (n * 3 + c) * plane;
      for (let i = 0; i < plane; i++) {
        const unit = Math.fround(image.data[i * 3 + c] / 255);
        out[base + i] = mean && std ? Math.fround(Math.fround(unit - m[c]) / s[c]) : unit;
      }
    }
  });
  return new Tensor(out, [images.length, 3, height, width]);
}

export interface ImageClassificationOptions {
  /** Side of the square center crop (torchvision's crop_size); default 224. */
  cropSize?: number;
  /** The shorter side after resizing (resize_size): 256 for the IMAGENET1K_V1 ResNet weights, 232 for V2. */
  resizeSize?: number;
  mean?: readonly number[];
  std?: readonly number[];
}

/**
 * torchvision's ImageClassification(crop_size, resize_size, mean, std, interpolation=BILINEAR) for
 * images decoded as PIL decodes them. Inputs of any channel count are first converted as PIL's
 * convert('RGB') does.
 */
export class ImageClassification {
  readonly cropSize: number;
  readonly resizeSize: number;
  readonly mean: readonly number[];
  readonly std: readonly number[];

  constructor(options: ImageClassificationOptions = {}) {
    this.cropSize = options.cropSize ?? 224;
    this.resizeSize = options.resizeSize ?? 256;
    this.mean = options.mean ?? IMAGENET_MEAN;
    this.std = options.std ?? IMAGENET_STD;
    for (const [name, v] of [['cropSize', this.cropSize], ['resizeSize', this.resizeSize]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
    if (this.mean.length !== 3 || this.std.length !== 3 || this.std.some((s) => s === 0)) {
      throw new RangeError('mean and std need three values each (RGB), std non-zero');
    }
  }

  /** The resized, center-cropped 8-bit RGB image: the tensor before scaling, as bytes. */
  resizeAndCrop(image: Pixels): RgbImage {
    const resized = resizeShorterSide(toRgb(image), this.resizeSize);
    return centerCrop(resized, this.cropSize) as RgbImage;
  }

  /** One image → [1, 3, crop, crop]; several → [N, 3, crop, crop]. Normalised, float32. */
  forward(images: Pixels | readonly Pixels[]): Tensor {
    const list = Array.isArray(images) ? (images as readonly Pixels[]) : [images as Pixels];
    return toTensor(list.map((image) => this.resizeAndCrop(image)), this.mean, this.std);
  }
}
