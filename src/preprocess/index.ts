// Image preprocessing for the ResNets: torchvision's ImageClassification preset with PIL's
// arithmetic. Plain TypeScript for Node and browsers alike: decoding files is the platform's
// (sharp in Node, createImageBitmap in a browser), and source.ts takes a page's images.

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
export { type ImageSource, imagePixels, preprocessImage } from './source.js';
