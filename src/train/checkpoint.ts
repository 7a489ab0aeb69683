// A training run's files: the weights as `.safetensors` (with what classify needs in its
// metadata: architecture, class names, input preprocessing) and as a torch `.pth` state dict
// that torchvision loads with weights_only=True, and `resume.safetensors`, one file holding
// everything `--resume` needs (model, optimizer state, schedule, epoch, log). Every file is
// written atomically — to a temporary name in the same folder, flushed, then renamed over
// the old one — so a run killed at any moment leaves the previous checkpoint loadable.

import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Tensor } from '../core/tensor.js';
import { writeSafetensors } from '../io/safetensors.js';
import { writeTorchStateDict } from '../io/torch-writer.js';

let temporaryCounter = 0;

/** Writes `bytes` to `path` so that readers see the old file or the new one, never a part. */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${temporaryCounter++}.tmp`);
  const file = await open(temporary, 'w');
  try {
    await file.writeFile(bytes);
    await file.sync();
  } catch (error) {
    await file.close();
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  await file.close();
  await rename(temporary, path);
  // The rename itself reaches the disk with the folder's entry; flush it where the OS lets us.
  const folder = await open(dirname(path), 'r').catch(() => null);
  if (folder) {
    await folder.sync().catch(() => undefined);
    await folder.close();
  }
}

/** What a trained model's weights carry besides the tensors (safetensors `__metadata__`, all strings). */
export interface ModelMetadata {
  /** A registry name (resnet20, resnet18, …) that builds the model. */
  arch: string;
  /** Class names by index. */
  classes: readonly string[];
  /** Input channels the model takes (1 for grayscale data). */
  inChannels: number;
  /** The eval preprocessing: resize of the shorter side, centre crop, then (x − mean) / std per channel. */
  preprocess: { resize: number; crop: number; mean: readonly number[]; std: readonly number[] };
  /** The epoch these weights are from (1-based) and their validation accuracy. */
  epoch?: number;
  accuracy?: number;
}

const METADATA_KEY = 'resnet-ts';

/** ModelMetadata as safetensors metadata: torch's `format: pt` plus one JSON value. */
export function encodeModelMetadata(meta: ModelMetadata): Record<string, string> {
  return { format: 'pt', [METADATA_KEY]: JSON.stringify(meta) };
}

/** ModelMetadata from safetensors metadata; null when the file was not written by a training run. */
export function decodeModelMetadata(metadata: Readonly<Record<string, string>>): ModelMetadata | null {
  const text = metadata[METADATA_KEY];
  if (text === undefined) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const meta = value as Partial<ModelMetadata>;
  if (typeof meta?.arch !== 'string' || !Array.isArray(meta.classes) || !meta.classes.every((c) => typeof c === 'string')) return null;
  return {
    arch: meta.arch,
    classes: meta.classes,
    inChannels: Number.isSafeInteger(meta.inChannels) ? meta.inChannels! : 3,
    preprocess: meta.preprocess ?? { resize: 256, crop: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    epoch: meta.epoch,
    accuracy: meta.accuracy,
  };
}

/** `<folder>/<name>.safetensors` and `<folder>/<name>.pth`, each written atomically. */
export async function saveWeights(folder: string, name: string, stateDict: ReadonlyMap<string, Tensor>, meta: ModelMetadata): Promise<void> {
  await writeFileAtomic(join(folder, `${name}.safetensors`), writeSafetensors(stateDict, encodeModelMetadata(meta)));
  await writeFileAtomic(join(folder, `${name}.pth`), writeTorchStateDict(stateDict));
}
