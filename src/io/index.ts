// Weight and tensor files: torch.save (zip and legacy), safetensors and .npy. The parsers take
// bytes, so they work in browsers too; loadWeightsFile reads from disk in Node.

export { WeightFileError } from './errors.js';
export type { ReadOptions } from './elements.js';
export { loadTorchFile, loadStateDictFromTorch, STATE_DICT_GLOBALS } from './torch.js';
export { readSafetensors, readSafetensorsMetadata, writeSafetensors } from './safetensors.js';
export { readNpy, writeNpy } from './npy.js';
export { readWeights, loadWeightsFile, detectWeightFormat, type WeightFileFormat } from './weights.js';
