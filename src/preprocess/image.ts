// 8-bit images as decoders and canvases hand them over, and their conversion to RGB exactly as
// PIL's Image.convert('RGB') does it, so that what follows sees the pixels torchvision sees.
// Plain TypeScript, no Node APIs: usable in browsers.

/** An 8-bit image: rows top to bottom, channels interleaved (HWC), the layout of ImageData. */
export interface Pixels {
  readonly width: number;
  readonly height: number;
  /** 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA. */
  readonly channels: number;
  /** width · height · channels bytes. */
  readonly data: Uint8Array | Uint8ClampedArray;
}

/** An 8-bit RGB image, what PIL calls mode "RGB". */
export interface RgbImage extends Pixels {
  readonly channels: 3;
  readonly data: Uint8Array;
}

export function checkPixels(image: Pixels): void {
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`image size must be positive integers, got ${width}x${height}`);
  }
  if (![1, 2, 3, 4].includes(channels)) throw new RangeError(`image must have 1 to 4 channels, got ${channels}`);
  if (data.length !== width * height * channels) {
    throw new RangeError(`image data has ${data.length} bytes, ${width}x${height}x${channels} needs ${width * height * channels}`);
  }
}

/**
 * RGB as PIL's convert('RGB') makes it: grey is copied into R, G and B; alpha is dropped, not
 * composited onto a background (a transparent pixel keeps whatever colour it stores).
 */
export function toRgb(image: Pixels): RgbImage {
  checkPixels(image);
  const { width, height, channels, data } = image;
  if (channels === 3) return { width, height, channels: 3, data: data instanceof Uint8Array ? data : new Uint8Array(data) };
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    if (channels <= 2) {
      const v = data[i * channels];
      out[i * 3] = v;
      out[i * 3 + 1] = v;
      out[i * 3 + 2] = v;
    } else {
      out[i * 3] = data[i * 4];
      out[i * 3 + 1] = data[i * 4 + 1];
      out[i * 3 + 2] = data[i * 4 + 2];
    }
  }
  return { width, height, channels: 3, data: out };
}

/** A browser ImageData (RGBA) as RGB, as convert('RGB') would drop its alpha. */
export function fromImageData(image: { readonly width: number; readonly height: number; readonly data: Uint8ClampedArray | Uint8Array }): RgbImage {
  return toRgb({ width: image.width, height: image.height, channels: 4, data: image.data });
}

/**
 * CMYK (as PIL holds it: Adobe's inverted JPEG samples already un-inverted) to RGB with PIL's
 * cmyk2rgb, which ignores colour profiles: with nk = 255 - K, R = nk - C·nk/255, rounded as
 * PIL's MULDIV255 rounds.
 */
export function cmykToRgb(width: number, height: number, cmyk: Uint8Array): RgbImage {
  const n = width * height;
  if (cmyk.length !== n * 4) throw new RangeError(`CMYK data has ${cmyk.length} bytes, ${width}x${height} needs ${n * 4}`);
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const nk = 255 - cmyk[i * 4 + 3];
    for (let c = 0; c < 3; c++) {
      const t = cmyk[i * 4 + c] * nk + 128;
      out[i * 3 + c] = nk - (((t >> 8) + t) >> 8); // in 0..255: the product never exceeds nk
    }
  }
  return { width, height, channels: 3, data: out };
}
