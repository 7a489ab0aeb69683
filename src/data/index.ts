// Data for training and evaluation: data sets (ImageFolder, FashionMNIST, TensorDataset),
// torchvision's transforms with seeded randomness, and the data loader that batches them.

export { type Sample, type Dataset, type Targets, TensorDataset, Subset, randomSplit, permutation, transformSample } from './dataset.js';
export { ImageFolder, IMAGE_EXTENSIONS, type ImageFolderOptions } from './image-folder.js';
export { FashionMNIST, FASHION_MNIST_CLASSES, FASHION_MNIST_DEBIAN_ROOT, parseIdx, type IdxArray, type FashionMNISTOptions } from './fashion-mnist.js';
export {
  type Transform,
  type Image,
  type CropBox,
  type RandomResizedCropOptions,
  Compose,
  RandomResizedCrop,
  RandomCrop,
  RandomHorizontalFlip,
  Resize,
  CenterCrop,
  Grayscale,
  ToTensor,
  Normalize,
  randomResizedCropBox,
  randomCropBox,
  crop,
  hflip,
  pixelsToTensor,
  presetTransform,
  trainTransform,
} from './transforms.js';
export { DataLoader, collate, mixSeed, type Batch, type DataLoaderOptions } from './loader.js';
