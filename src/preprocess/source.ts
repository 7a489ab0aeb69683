// The images a web page holds — a File or Blob, an <img>, a <canvas>, an ImageBitmap, ImageData —
// as the RGB pixels the preprocessing takes. Files are decoded by the platform's decoder
// (createImageBitmap in a browser, without colour management; sharp in Node), so a PNG gives
// the same pixels as in Node, and a JPEG the pixels of the browser's decoder.

import { canvasPixels, type DrawableImage } from '../platform/canvas.js';
import type { Tensor } from '../core/tensor.js';
import { decodeImage, type DecodeOptions } from './decode.js';
import { toRgb, type Pixels, type RgbImage } from './image.js';
import { ImageClassification, type ImageClassificationOptions } from './transforms.js';

/** Anything imagePixels reads: encoded bytes (Blob, File, ArrayBuffer, Uint8Array), something a canvas draws, or pixels. */
export type ImageSource = Blob | ArrayBuffer | Uint8Array | DrawableImage | ImageData | Pixels;

function isPixels(source: object): source is Pixels {
  return 'channels' in source && 'data' in source;
}

function isImageData(source: object): source is ImageData {
  return typeof ImageData !== 'undefined' ? source instanceof ImageData : false;
}

/**
 * The RGB pixels of `source`, as PIL's Image.open(f).convert('RGB') holds them for a file. An
 * <img> must have loaded; it is read at its natural size, after the browser's colour management
 * (pass the File instead for the file's own pixels). Alpha is dropped, as convert('RGB') drops it.
 */
export async function imagePixels(source: ImageSource, options: DecodeOptions = {}): Promise<RgbImage> {
  if (source instanceof Uint8Array) return decodeImage(source, options);
  if (source instanceof ArrayBuffer) return decodeImage(new Uint8Array(source), options);
  if (typeof Blob !== 'undefined' && source instanceof Blob) return decodeImage(new Uint8Array(await source.arrayBuffer()), options);
  if (isImageData(source)) return toRgb({ width: source.width, height: source.height, channels: 4, data: source.data });
  if (isPixels(source)) return toRgb(source);
  if (typeof HTMLImageElement !== 'undefined' && source instanceof HTMLImageElement) {
    if (!source.complete || source.naturalWidth === 0) {
      await source.decode().catch((error: Error) => {
        throw new Error(`the <img> did not load (${error.message})`);
      });
    }
    return toRgb(pixelsOf(canvasPixels(source, source.naturalWidth, source.naturalHeight)));
  }
  return toRgb(pixelsOf(canvasPixels(source as DrawableImage)));
}

function pixelsOf(image: ImageData): Pixels {
  return { width: image.width, height: image.height, channels: 4, data: image.data };
}

/**
 * torchvision's ImageClassification preset on any ImageSource: the normalised [1, 3, crop, crop]
 * tensor a ResNet takes (resizeSize 256 and cropSize 224 unless `options` says otherwise; the
 * descriptor of the weights says: `descriptor.transforms`).
 */
export async function preprocessImage(source: ImageSource, options: ImageClassificationOptions & DecodeOptions = {}): Promise<Tensor> {
  return new ImageClassification(options).forward(await imagePixels(source, options));
}
