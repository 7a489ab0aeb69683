// Decodes JPEG, PNG and WebP bytes with sharp (libvips: mozjpeg, libpng/spng, libwebp) into the
// samples PIL's Image.open(f) holds; src/preprocess/decode.ts turns them into RGB as PIL's
// convert('RGB') does. Node only: platform/node.ts imports this module, and sharp, when first used.
//
// What we do to match PIL where libvips would differ:
//   - embedded ICC profiles are ignored (ignoreIcc), as PIL ignores them;
//   - EXIF orientation is not applied (PIL's open does not apply it either);
//   - CMYK JPEGs are read as raw CMYK (converted with PIL's profile-free formula by the caller);
//   - 16-bit grey PNGs (PIL's mode "I") are clipped to 255, as convert('RGB') clips them; other
//     16-bit PNGs keep their high byte, as PIL's 16-bit unpackers do.

import type { Sharp, SharpOptions } from 'sharp';
import { ImageFileError } from '../core/errors.js';
import type { DecodedSamples } from './types.js';

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

/** The samples of a JPEG, PNG or WebP file's bytes (the first frame of an animation), at most `maxPixels` of them. */
export async function decodeWithSharp(bytes: Uint8Array, format: string, maxPixels: number): Promise<DecodedSamples> {
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
      return { width, height, channels: 4, data, cmyk: true };
    }
    if (meta.space === 'grey16' && !meta.hasAlpha) {
      const { data, width, height } = await raw(sharp(bytes, sharpOptions).toColourspace('grey16'), true);
      const samples = new Uint16Array(data.buffer, data.byteOffset, width * height); // host order (little-endian)
      return { width, height, channels: 1, data: Uint8Array.from(samples, (v) => Math.min(v, 255)), cmyk: false };
    }
    // Everything else comes out as 8-bit grey, grey+alpha, RGB or RGBA; palettes are expanded.
    const { data, width, height, channels } = await raw(sharp(bytes, sharpOptions));
    return { width, height, channels: channels as DecodedSamples['channels'], data, cmyk: false };
  } catch (e) {
    throw e instanceof ImageFileError ? e : decodeError(e);
  }
}
