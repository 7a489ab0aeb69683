// Decodes JPEG, PNG and WebP files into the RGB pixels PIL's Image.open(f).convert('RGB') gives,
// with sharp (libvips: mozjpeg, libpng/spng, libwebp). Node only: sharp and node:fs are imported
// when first used, so importing this module costs browsers nothing.
//
// Measured against Pillow 9.4 (libjpeg-turbo 2.1, libwebp 1.2) on the fixtures in
// test/fixtures/preprocess: identical pixels for every JPEG (4:2:0, 4:4:4, progressive, grey,
// CMYK), PNG and WebP there. mozjpeg decodes as libjpeg-turbo does (islow IDCT, fancy upsampling).
// What we do to match PIL where libvips would differ:
//   - embedded ICC profiles are ignored (ignoreIcc), as PIL ignores them;
//   - EXIF orientation is not applied (PIL's open does not apply it either);
//   - CMYK JPEGs are read as raw CMYK and converted with PIL's profile-free formula;
//   - 16-bit grey PNGs (PIL's mode "I") are clipped to 255, as convert('RGB') clips them; other
//     16-bit PNGs keep their high byte, as PIL's 16-bit unpackers do.
// What a file of n bytes may cost is bounded before anything is decoded: only files that open
// with a JPEG, PNG or WebP signature reach libvips, and the size in their header may claim at most
// max(2^24, 1024·n) pixels — the rest of a file that claims more could only be missing or a
// decompression bomb — and never more than PIL's DecompressionBombError threshold.

import type { Sharp, SharpOptions } from 'sharp';
import { cmykToRgb, toRgb, type RgbImage } from './image.js';

/** A file that is not an image we decode, or a corrupt, truncated or unreadable one. */
export class ImageFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImageFileError';
  }
}

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

/**
 * Warnings (libjpeg's "extraneous bytes before marker", say) are tolerated as PIL tolerates them;
 * truncated or broken data is refused, as PIL refuses it.
 */
const SHARP_OPTIONS: SharpOptions = { failOn: 'error', ignoreIcc: true };

type SharpFactory = (input: Uint8Array, options: SharpOptions) => Sharp;
let sharpFactory: Promise<SharpFactory> | undefined;

function loadSharp(): Promise<SharpFactory> {
  sharpFactory ??= import('sharp').then(
    (m) => m.default as unknown as SharpFactory,
    (e: unknown) => {
      sharpFactory = undefined;
      throw new Error(`decoding images needs the 'sharp' package: ${(e as Error).message}`);
    },
  );
  return sharpFactory;
}

function decodeError(e: unknown): ImageFileError {
  // libvips messages can span lines; keep the first, which says what was wrong.
  const first = String((e as Error).message ?? e).split('\n')[0].trim();
  return new ImageFileError(first, { cause: e });
}

/** Raw samples: 8-bit unless asked for 16. */
async function raw(image: Sharp, sixteenBit = false): Promise<{ data: Uint8Array; width: number; height: number; channels: number }> {
  const { data, info } = await image.raw(sixteenBit ? { depth: 'ushort' } : {}).toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: info.channels };
}

/** The RGB pixels of a JPEG, PNG or WebP file's bytes (the first frame of an animation). */
export async function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): Promise<RgbImage> {
  const format = formatOf(bytes);
  if (!(FORMATS as readonly (string | undefined)[]).includes(format)) {
    throw new ImageFileError(`unsupported image format${format ? ` '${format}'` : ''}: expected JPEG, PNG or WebP`);
  }
  const maxPixels = options.maxPixels ?? defaultMaxPixels(bytes.length);
  const sharpOptions: SharpOptions = { ...SHARP_OPTIONS, limitInputPixels: Math.max(1, Math.min(maxPixels, Number.MAX_SAFE_INTEGER)) };
  const sharp = await loadSharp();
  try {
    // The header alone, read without libvips' pixel limit, so that a claim over ours gets our message.
    const meta = await sharp(bytes, { ...SHARP_OPTIONS, limitInputPixels: false }).metadata();
    if (meta.format !== format) {
      throw new ImageFileError(`unsupported image format${meta.format ? ` '${meta.format}'` : ''}: expected JPEG, PNG or WebP`);
    }
    const pixels = (meta.width ?? 0) * (meta.height ?? 0);
    if (pixels > maxPixels) {
      throw new ImageFileError(`the ${format} header claims ${meta.width}×${meta.height} pixels, more than the ` +
        `${maxPixels} a ${bytes.length}-byte file may claim (DecodeOptions.maxPixels)`);
    }
    if (meta.space === 'cmyk') {
      const { data, width, height } = await raw(sharp(bytes, sharpOptions).pipelineColourspace('cmyk').toColourspace('cmyk'));
      return cmykToRgb(width, height, data);
    }
    if (meta.space === 'grey16' && !meta.hasAlpha) {
      const { data, width, height } = await raw(sharp(bytes, sharpOptions).toColourspace('grey16'), true);
      const samples = new Uint16Array(data.buffer, data.byteOffset, width * height); // host order (little-endian)
      return toRgb({ width, height, channels: 1, data: Uint8Array.from(samples, (v) => Math.min(v, 255)) });
    }
    // Everything else comes out as 8-bit grey, grey+alpha, RGB or RGBA; palettes are expanded.
    return toRgb(await raw(sharp(bytes, sharpOptions)));
  } catch (e) {
    throw e instanceof ImageFileError ? e : decodeError(e);
  }
}

/** Reads and decodes an image file; every failure to read or decode it is an ImageFileError naming the path. */
export async function readImage(path: string, options: DecodeOptions = {}): Promise<RgbImage> {
  const { readFile } = await import('node:fs/promises');
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
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
