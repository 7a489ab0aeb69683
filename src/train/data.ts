// The data a training run reads, from what `--data` names: "fashion-mnist" (Debian's
// dataset-fashion-mnist, 28×28 grayscale, its own test split for validation) or an image
// folder — torchvision's ImageFolder layout, with `train/` and `val/` subfolders when it has
// them, else one folder split into train and validation by a seeded draw; in colour, or as one
// grey channel with `grayscale`. Each comes with the transforms of a standard recipe and the
// preprocessing that classify will apply later.

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../core/tensor.js';
import { Generator } from '../core/rng.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../preprocess/transforms.js';
import {
  CenterCrop, Compose, DataLoader, FashionMNIST, Grayscale, ImageFolder, Normalize, RandomCrop, RandomHorizontalFlip,
  RandomResizedCrop, Resize, Subset, ToTensor, permutation, type Dataset, type Transform,
} from '../data/index.js';
import type { ModelMetadata } from './checkpoint.js';

/** Fashion-MNIST's per-channel mean and standard deviation over its 60,000 training images. */
export const FASHION_MNIST_MEAN: readonly number[] = [0.286];
export const FASHION_MNIST_STD: readonly number[] = [0.353];

/**
 * Grey folder images' mean and standard deviation: ImageNet's, weighted as Grayscale weighs
 * the channels (ITU-R 601-2 luma: 0.299 R + 0.587 G + 0.114 B), the grey of ImageNet's mean colour.
 */
const LUMA = [0.299, 0.587, 0.114];
export const GRAY_MEAN: readonly number[] = [LUMA.reduce((sum, w, c) => sum + w * IMAGENET_MEAN[c], 0)];
export const GRAY_STD: readonly number[] = [LUMA.reduce((sum, w, c) => sum + w * IMAGENET_STD[c], 0)];

export interface TrainData {
  /** What --data said, for logs. */
  source: string;
  train: Dataset<Tensor>;
  val: Dataset<Tensor>;
  classes: readonly string[];
  /** Channels of the images (1 for Fashion-MNIST). */
  inChannels: number;
  /** What classify applies to a new image for a model trained on this data. */
  preprocess: ModelMetadata['preprocess'];
}

export interface TrainDataOptions {
  /** Crop size of folder images (224 by default); Fashion-MNIST stays 28×28. */
  imageSize?: number;
  /** Fraction of a folder without train/ and val/ held out for validation (0.2). */
  valFraction?: number;
  /** Seed of that split. */
  seed?: number;
  /** Use only the first n samples of each split (a quick run, a test). */
  limit?: number;
  /** Folder images as one grey channel (torchvision's Grayscale(1)), normalised by GRAY_MEAN and GRAY_STD. */
  grayscale?: boolean;
}

function firstN<X>(dataset: Dataset<X>, limit: number | undefined): Dataset<X> {
  if (limit === undefined || limit >= dataset.length) return dataset;
  return new Subset(dataset, Int32Array.from({ length: limit }, (_, i) => i));
}

/**
 * A seeded split of 0 … n−1 into (train, val) index lists, val taking round(n·fraction) (at
 * least 1, at most n − 1), each sorted: two data sets over one folder, with the training and
 * the evaluation transforms, take the two halves.
 */
export function splitIndices(n: number, fraction: number, seed: number): [Int32Array, Int32Array] {
  const order = permutation(n, new Generator(seed));
  const valCount = Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
  return [order.slice(valCount).sort(), order.slice(0, valCount).sort()];
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

export async function loadTrainData(source: string, options: TrainDataOptions = {}): Promise<TrainData> {
  if (source === 'fashion-mnist') {
    const mean = FASHION_MNIST_MEAN;
    const std = FASHION_MNIST_STD;
    // The CIFAR recipe of He et al. 2015 (§4.2) at 28×28: 4-pixel padded random crops and flips.
    const trainTransform = new Compose<never, Tensor>([new RandomCrop(28, { padding: 4 }), new RandomHorizontalFlip(), new ToTensor(), new Normalize(mean, std)]);
    const evalTransform = new Compose<never, Tensor>([new ToTensor(), new Normalize(mean, std)]);
    const [train, val] = await Promise.all([
      FashionMNIST.load({ train: true, transform: trainTransform as Transform<never, Tensor> }),
      FashionMNIST.load({ train: false, transform: evalTransform as Transform<never, Tensor> }),
    ]);
    return {
      source,
      train: firstN(train, options.limit),
      val: firstN(val, options.limit),
      classes: train.classes,
      inChannels: 1,
      preprocess: { resize: 28, crop: 28, mean, std },
    };
  }
  if (!isDirectory(source)) {
    throw new Error(`--data: '${source}' is neither 'fashion-mnist' nor a folder of class folders`);
  }
  const size = options.imageSize ?? 224;
  const resize = Math.round((size * 256) / 224);
  const grayscale = options.grayscale ?? false;
  const mean = grayscale ? GRAY_MEAN : IMAGENET_MEAN;
  const std = grayscale ? GRAY_STD : IMAGENET_STD;
  // Grey first, so that the crops and resizes work on one channel.
  const grey = grayscale ? [new Grayscale(1)] : [];
  const trainTransform = new Compose<never, Tensor>([...grey, new RandomResizedCrop(size), new RandomHorizontalFlip(), new ToTensor(), new Normalize(mean, std)]);
  const evalTransform = new Compose<never, Tensor>([...grey, new Resize(resize), new CenterCrop(size), new ToTensor(), new Normalize(mean, std)]);
  let train: Dataset<Tensor>;
  let val: Dataset<Tensor>;
  let classes: readonly string[];
  if (isDirectory(join(source, 'train')) && isDirectory(join(source, 'val'))) {
    const trainFolder = await ImageFolder.load(join(source, 'train'), { transform: trainTransform as Transform<never, Tensor> });
    const valFolder = await ImageFolder.load(join(source, 'val'), { transform: evalTransform as Transform<never, Tensor> });
    if (trainFolder.classes.join('\n') !== valFolder.classes.join('\n')) {
      throw new Error(`--data: ${join(source, 'train')} and ${join(source, 'val')} have different class folders`);
    }
    [train, val, classes] = [trainFolder, valFolder, trainFolder.classes];
  } else {
    const trainFolder = await ImageFolder.load(source, { transform: trainTransform as Transform<never, Tensor> });
    const valFolder = trainFolder.withTransform(evalTransform as Transform<never, Tensor>); // listed once
    if (trainFolder.length < 2) throw new Error(`--data: ${source} holds ${trainFolder.length} image(s); training needs at least 2`);
    const [trainIndices, valIndices] = splitIndices(trainFolder.length, options.valFraction ?? 0.2, options.seed ?? 0);
    [train, val, classes] = [new Subset(trainFolder, trainIndices), new Subset(valFolder, valIndices), trainFolder.classes];
  }
  return {
    source,
    train: firstN(train, options.limit),
    val: firstN(val, options.limit),
    classes,
    inChannels: grayscale ? 1 : 3,
    preprocess: { resize, crop: size, mean, std },
  };
}

/** Loaders over the two splits: the training one shuffled by the seed, the validation one in order. */
export function makeLoaders(data: TrainData, batchSize: number, seed: number): { train: DataLoader<Tensor>; val: DataLoader<Tensor> } {
  return {
    train: new DataLoader(data.train, { batchSize, shuffle: true, seed, dropLast: data.train.length > batchSize }),
    val: new DataLoader(data.val, { batchSize, shuffle: false, seed }),
  };
}
