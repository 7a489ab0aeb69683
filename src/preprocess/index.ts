// Image preprocessing for the ResNets: torchvision's ImageClassification preset with PIL's
// arithmetic. Everything but decode.ts is plain TypeScript for browsers too; decode.ts loads
// sharp and node:fs only when decodeImage / readImage are called.

export { type Pixels, type RgbImage, toRgb, fromImageData, cmykToRgb } from './image.js';
export { resizeBilinear } from './resize.js';
export {
  IMAGENET_MEAN,
  IMAGENET_STD,
  ImageClassification,
  type ImageClassificationOptions,
  type CropPlan,
  resizedSize,
  resizeShorterSide,
  centerCropPlan,
  centerCrop,
  toTensor,
} from './transforms.js';
export { ImageFileError, type DecodeOptions, decodeImage, defaultMaxPixels, readImage } from './decode.js';
