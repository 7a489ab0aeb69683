// Reads the pixels of anything a 2D canvas can draw (ImageBitmap, <img>, <canvas>, OffscreenCanvas,
// VideoFrame) as RGBA ImageData. Browsers only (plain DOM APIs, nothing of Node's).

/** What canvasPixels can read: a drawable image with its size in pixels. */
export type DrawableImage = CanvasImageSource & { readonly width: number; readonly height: number };

/** The RGBA pixels of `image` at its own size, drawn onto an OffscreenCanvas (a <canvas> where there is none). */
export function canvasPixels(image: DrawableImage, width = image.width, height = image.height): ImageData {
  const canvas: OffscreenCanvas | HTMLCanvasElement =
    typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(width, height) : Object.assign(document.createElement('canvas'), { width, height });
  const context = canvas.getContext('2d', { willReadFrequently: true }) as OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D | null;
  if (!context) throw new Error('no 2D canvas context to read the image pixels from');
  context.drawImage(image, 0, 0);
  return context.getImageData(0, 0, width, height);
}
