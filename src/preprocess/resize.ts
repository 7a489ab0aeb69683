// Antialiased bilinear resizing, bit for bit what PIL's Image.resize(size, Image.BILINEAR) computes
// on 8-bit images (Pillow's libImaging/Resample.c), which is what torchvision's Resize does to a
// PIL image. Plain TypeScript, no Node APIs: usable in browsers.
//
// PIL resizes in two separable passes, horizontal then vertical, each a convolution with a
// triangle filter whose support grows with the downscale factor (so downscaling averages every
// input pixel instead of skipping some: that is the antialiasing). Each output's weights are
// normalised to sum to 1 in float64, then turned into integers with 22 fractional bits; the
// accumulation is integer, and each pass rounds to 8 bits, so the vertical pass sees the
// horizontal pass's rounded bytes. Every one of those steps is reproduced here.

import { checkPixels, type Pixels } from './image.js';

/** Fractional bits of the integer weights: 32 - 8 (the pixel) - 2 (headroom for negative lobes). */
const PRECISION_BITS = 22;

/** The triangle ("tent") filter of PIL's BILINEAR, support 1 before scaling. */
function bilinearFilter(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

/** Per output index along one axis: the first input index, how many inputs, and their weights. */
interface AxisWeights {
  /** first[i], count[i]: output i reads inputs first[i] .. first[i] + count[i] - 1. */
  readonly first: Int32Array;
  readonly count: Int32Array;
  /** weights[i * taps + j]: the integer weight (scaled by 2^22) of input first[i] + j. */
  readonly weights: Int32Array;
  readonly taps: number;
}

/**
 * PIL's precompute_coeffs followed by normalize_coeffs_8bpc, for the whole axis (box 0..inSize).
 * The float64 arithmetic is written in PIL's order so that every weight rounds the same way.
 */
function axisWeights(inSize: number, outSize: number): AxisWeights {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1); // upscaling keeps the filter's width at one input pixel
  const support = 1 * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const k = new Float64Array(taps);
  const invScale = 1 / filterScale;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    // C's (int) truncates towards zero; the clamp to 0 makes that floor here.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let j = 0; j < n; j++) {
      const w = bilinearFilter((j + xmin - center + 0.5) * invScale);
      k[j] = w;
      sum += w;
    }
    for (let j = 0; j < n; j++) {
      const w = sum !== 0 ? k[j] / sum : k[j];
      // Triangle weights are never negative, so PIL's "-0.5 for negatives" branch never runs.
      weights[i * taps + j] = Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    first[i] = xmin;
    count[i] = n;
  }
  return { first, count, weights, taps };
}

/** PIL's clip8: drop the fractional bits and clamp to a byte. */
function clip8(accumulator: number): number {
  const v = accumulator >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

const HALF = 1 << (PRECISION_BITS - 1); // rounds to nearest when the fraction is dropped

/** Horizontal pass over input rows rowStart .. rowStart + rows - 1: (rows, inW, C) → (rows, outW, C). */
function resizeRows(src: Pixels, rowStart: number, rows: number, outWidth: number, axis: AxisWeights): Uint8Array {
  const { width, channels: c, data } = src;
  const out = new Uint8Array(rows * outWidth * c);
  const { first, count, weights, taps } = axis;
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + rowStart) * width * c;
    const rowOut = y * outWidth * c;
    for (let x = 0; x < outWidth; x++) {
      const start = rowIn + first[x] * c;
      const n = count[x];
      const w0 = x * taps;
      for (let ch = 0; ch < c; ch++) {
        let acc = HALF;
        for (let j = 0; j < n; j++) acc += data[start + j * c + ch] * weights[w0 + j];
        out[rowOut + x * c + ch] = clip8(acc);
      }
    }
  }
  return out;
}

/** Vertical pass: (inH, W, C) → (outH, W, C); `axis.first` counts rows of `src`. */
function resizeColumns(src: Pixels, outHeight: number, axis: AxisWeights, rowOffset: number): Uint8Array {
  const { width, channels: c, data } = src;
  const rowLength = width * c;
  const out = new Uint8Array(outHeight * rowLength);
  const { first, count, weights, taps } = axis;
  const acc = new Float64Array(rowLength);
  for (let y = 0; y < outHeight; y++) {
    // Accumulate whole rows at a time: same sums as PIL's column loop, in a cache-friendly order.
    // Each sum is an exact integer below 2^31, so float64 holds it exactly.
    acc.fill(HALF);
    const w0 = y * taps;
    for (let j = 0; j < count[y]; j++) {
      const w = weights[w0 + j];
      const row = (first[y] - rowOffset + j) * rowLength;
      for (let i = 0; i < rowLength; i++) acc[i] += data[row + i] * w;
    }
    const rowOut = y * rowLength;
    for (let i = 0; i < rowLength; i++) out[rowOut + i] = clip8(acc[i]);
  }
  return out;
}

/**
 * `image` resized to width × height as PIL's Image.resize((width, height), Image.BILINEAR) does it
 * (antialiased when downscaling), for any channel count; bit-exact with Pillow's 8-bit path.
 * An axis whose size does not change is not filtered (PIL skips that pass too).
 */
export function resizeBilinear(image: Pixels, width: number, height: number): Pixels {
  checkPixels(image);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resize target must be positive integers, got ${width}x${height}`);
  }
  const { channels } = image;
  const horizontal = width !== image.width;
  const vertical = height !== image.height;
  if (!horizontal && !vertical) return { width, height, channels, data: new Uint8Array(image.data) };

  const rowsAxis = axisWeights(image.height, height);
  let current: Pixels = image;
  let rowOffset = 0;
  if (horizontal) {
    // Only the input rows that the vertical pass reads are resized horizontally.
    const firstRow = vertical ? rowsAxis.first[0] : 0;
    const lastRow = vertical ? rowsAxis.first[height - 1] + rowsAxis.count[height - 1] : image.height;
    const data = resizeRows(image, firstRow, lastRow - firstRow, width, axisWeights(image.width, width));
    current = { width, height: lastRow - firstRow, channels, data };
    rowOffset = firstRow;
  }
  if (vertical) {
    current = { width, height, channels, data: resizeColumns(current, height, rowsAxis, rowOffset) };
  }
  return current;
}
