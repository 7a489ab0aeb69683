// Pretrained weights: torchvision's ImageNet descriptors for the ten builders, and loading
// weights by name, descriptor, path or URL (downloads cached and checked, in Node).

export { fileNameOf, sha256PrefixOf, type ImageClassificationTransforms, type ImageNetWeightsDescriptor, type WeightsDescriptor, type WeightsMeta, type WeightsName } from './descriptor.js';
export { IMAGENET_CATEGORIES, IMAGENET_WEIGHTS, TORCHVISION_VERSION } from './imagenet.generated.js';
export { DownloadError } from './errors.js';
export {
  downloadToCache, getModelWeights, loadStateDictFromUrl, loadWeights, loadWeightsBytes, resolveWeights,
  type CacheOptions, type WeightsBytes, type WeightsSource, type WeightsSpec,
} from './load.js';
