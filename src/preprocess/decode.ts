// Decodes JPEG, PNG and WebP files into the RGB pixels PIL's Image.open(f).convert('RGB') gives.
// The decoder is the platform's (src/platform): sharp in Node (libvips: mozjpeg, libpng/spng,
// libwebp), createImageBitmap in a browser.
//
// Measured against Pillow 9.4 (libjpeg-turbo 2.1, libwebp 1.2) on the fixtures in
// test/fixtures/preprocess: in Node, identical pixels for every JPEG (4:2:0, 4:4:4, progressive,
// grey, CMYK), PNG and WebP there (platform/node-decode.ts says how). Browsers' JPEG decoders may
// round differently (within 2/255 after preprocessing); PNG pixels are exact.
// What a file of n bytes may cost is bounded before anything is decoded: only files that open
// with a JPEG, PNG or WebP signature reach the decoder, and the size in their header may claim at most
// max(2^24, 1024·n) pixels — the rest of a file that claims more could only be missing or a
// decompression bomb — and never more than PIL's DecompressionBombError threshold.

import { platform } from '#platform';
import { ImageFileError } from '../core/errors.js';
import { cmykToRgb, toRgb, type RgbImage } from './image.js';

export { ImageFileError } from '../core/errors.js';

const FORMATS = ['jpeg', 'png', 'webp'] as const;

/**
 * The format a file's signature names (WebP: "RIFF", a length, then "WEBP" at byte 8); a few
 * formats we do not decode are named too, for the error message.
 */
function formatOf(bytes: Uint8Array): string | undefined {
  const at = (offset: number, signature: string): boolean =>
    [...signature].every((c, k) => bytes[offset + k] === c.charCodeAt(0));
  if (at(0, '\xff\xd8\xff')) return 'jpeg';
  if (at(0, '\x89PNG\r\n\x1a\n')) return 'png';
  if (at(0, 'RIFF') && at(8, 'WEBP')) return 'webp';
  if (at(0, 'GIF87a') || at(0, 'GIF89a')) return 'gif';
  if (at(0, 'II*\0') || at(0, 'MM\0*')) return 'tiff';
  if (at(0, 'BM')) return 'bmp';
  return undefined;
}

/** PIL refuses images over 2 × Image.MAX_IMAGE_PIXELS (DecompressionBombError). */
const PIL_BOMB_PIXELS = 2 * 89_478_485;
/** Every file may claim this many pixels (a 4096×4096 image)… */
const FREE_PIXELS = 2 ** 24;
/** …and larger files this many per byte: beyond any photograph, within what deflate or WebP reach on flat images. */
const PIXELS_PER_BYTE = 1024;

/** The most pixels a file of `fileBytes` bytes may claim (DecodeOptions.maxPixels's default). */
export function defaultMaxPixels(fileBytes: number): number {
  return Math.min(PIL_BOMB_PIXELS, Math.max(FREE_PIXELS, PIXELS_PER_BYTE * fileBytes));
}

export interface DecodeOptions {
  /** The most pixels (width · height) the file may claim; default defaultMaxPixels(its size). */
  maxPixels?: number;
}

/** The RGB pixels of a JPEG, PNG or WebP file's bytes (the first frame of an animation). */
export async function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): Promise<RgbImage> {
  const format = formatOf(bytes);
  if (!(FORMATS as readonly (string | undefined)[]).includes(format)) {
    throw new ImageFileError(`unsupported image format${format ? ` '${format}'` : ''}: expected JPEG, PNG or WebP`);
  }
  const maxPixels = options.maxPixels ?? defaultMaxPixels(bytes.length);
  const samples = await platform.decodeImage(bytes, format!, maxPixels);
  if (samples.cmyk) return cmykToRgb(samples.width, samples.height, new Uint8Array(samples.data));
  return toRgb(samples);
}

/** Reads and decodes an image file; every failure to read or decode it is an ImageFileError naming the path. */
export async function readImage(path: string, options: DecodeOptions = {}): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    bytes = await platform.readFile(path);
  } catch (e) {
    throw new ImageFileError(`cannot read image '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  try {
    return await decodeImage(bytes, options);
  } catch (e) {
    if (e instanceof ImageFileError) throw new ImageFileError(`image '${path}': ${e.message}`, { cause: e });
    throw e;
  }
}
