// The fine-tuning benchmark's data (bench/finetune.ts): Fashion-MNIST (Debian's
// dataset-fashion-mnist) split by class into a pretraining set and a fine-tuning set, each
// written as an image folder — <out>/<name>/{train,val}/<class>/<index>.png, 28×28 grey PNGs
// (sharp), train/ from the official training images and val/ from the test images, the first
// n of each class in the files' order, so the same arguments always give the same folders.
// A folder already holding what was asked (its dataset.json) is left as it is.
//
//   node dist/bench/finetune_data.js --out <dir> [--pretrain-train 2000] [--pretrain-val 500]
//                                    [--finetune-train 200] [--finetune-val 200]
//
// writes <dir>/pretrain (classes 0-4: T-shirt/top … Coat) and <dir>/finetune (classes 5-9:
// Sandal … Ankle boot).

import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { FashionMNIST, FASHION_MNIST_CLASSES } from '../src/data/index.js';

export const PRETRAIN_CLASSES: readonly number[] = [0, 1, 2, 3, 4];
export const FINETUNE_CLASSES: readonly number[] = [5, 6, 7, 8, 9];

export interface FolderSpec {
  /** Fashion-MNIST labels to take. */
  classes: readonly number[];
  /** Images per class in train/ (from the training split) and in val/ (from the test split). */
  trainPerClass: number;
  valPerClass: number;
}

export interface RenderedFolder extends FolderSpec {
  root: string;
  /** The class folders' names, by Fashion-MNIST label order. */
  classNames: string[];
  train: number;
  val: number;
}

/** A class name as a folder name: 'T-shirt/top' → 'T-shirt_top'. */
export function classFolderName(label: number): string {
  return FASHION_MNIST_CLASSES[label].replace(/[/\\]/g, '_');
}

/** The indices of the first `perClass` images of each of `classes` in `split`, class by class. */
function firstOfEachClass(split: FashionMNIST, classes: readonly number[], perClass: number): number[][] {
  return classes.map((label) => {
    const picked: number[] = [];
    for (let i = 0; i < split.length && picked.length < perClass; i++) if (split.targets[i] === label) picked.push(i);
    if (picked.length < perClass) throw new RangeError(`Fashion-MNIST's ${split.train ? 'training' : 'test'} split has ${picked.length} images of class ${label}, ${perClass} asked`);
    return picked;
  });
}

/** Writes the folder `spec` describes under `root` (from the IDX files in `fashionRoot`, Debian's by default). */
export async function renderFashionMnistFolder(root: string, spec: FolderSpec, fashionRoot?: string): Promise<RenderedFolder> {
  const classNames = spec.classes.map(classFolderName);
  const rendered: RenderedFolder = { ...spec, classes: [...spec.classes], root, classNames, train: spec.trainPerClass * spec.classes.length, val: spec.valPerClass * spec.classes.length };
  const manifestPath = join(root, 'dataset.json');
  const manifest = `${JSON.stringify({ source: 'Fashion-MNIST', ...spec, classNames }, null, 1)}\n`;
  if ((await readFile(manifestPath, 'utf8').catch(() => '')) === manifest) return rendered;
  await rm(root, { recursive: true, force: true });
  for (const [split, perClass] of [['train', spec.trainPerClass], ['val', spec.valPerClass]] as const) {
    const images = await FashionMNIST.load({ train: split === 'train', root: fashionRoot });
    const size = images.height * images.width;
    const picks = firstOfEachClass(images, spec.classes, perClass);
    for (const [k, indices] of picks.entries()) {
      const dir = join(root, split, classNames[k]);
      await mkdir(dir, { recursive: true });
      // A few dozen encodes at a time (sharp runs them on libuv's threads).
      for (let start = 0; start < indices.length; start += 64) {
        await Promise.all(indices.slice(start, start + 64).map((i) => {
          const pixels = images.images.subarray(i * size, (i + 1) * size);
          return sharp(pixels, { raw: { width: images.width, height: images.height, channels: 1 } }).toColourspace('b-w').png().toFile(join(dir, `${String(i).padStart(5, '0')}.png`));
        }));
      }
    }
  }
  // Written last: a folder interrupted half-way has none and is written again.
  await writeFile(manifestPath, manifest);
  return rendered;
}

export interface BenchmarkFolders {
  pretrain: RenderedFolder;
  finetune: RenderedFolder;
}

/** The benchmark's two folders under `out`: pretrain/ (classes 0-4) and finetune/ (classes 5-9). */
export async function renderBenchmarkFolders(
  out: string,
  sizes: { pretrainTrain: number; pretrainVal: number; finetuneTrain: number; finetuneVal: number },
  fashionRoot?: string,
): Promise<BenchmarkFolders> {
  return {
    pretrain: await renderFashionMnistFolder(join(out, 'pretrain'), { classes: PRETRAIN_CLASSES, trainPerClass: sizes.pretrainTrain, valPerClass: sizes.pretrainVal }, fashionRoot),
    finetune: await renderFashionMnistFolder(join(out, 'finetune'), { classes: FINETUNE_CLASSES, trainPerClass: sizes.finetuneTrain, valPerClass: sizes.finetuneVal }, fashionRoot),
  };
}

export const DEFAULT_SIZES = { pretrainTrain: 2000, pretrainVal: 500, finetuneTrain: 200, finetuneVal: 200 };

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      'pretrain-train': { type: 'string', default: String(DEFAULT_SIZES.pretrainTrain) },
      'pretrain-val': { type: 'string', default: String(DEFAULT_SIZES.pretrainVal) },
      'finetune-train': { type: 'string', default: String(DEFAULT_SIZES.finetuneTrain) },
      'finetune-val': { type: 'string', default: String(DEFAULT_SIZES.finetuneVal) },
    },
  });
  if (!values.out) throw new Error('--out <dir> is needed');
  const folders = await renderBenchmarkFolders(values.out, {
    pretrainTrain: Number(values['pretrain-train']), pretrainVal: Number(values['pretrain-val']),
    finetuneTrain: Number(values['finetune-train']), finetuneVal: Number(values['finetune-val']),
  });
  for (const f of Object.values(folders)) process.stderr.write(`${f.root}: ${f.classNames.join(', ')}; ${f.train} training and ${f.val} validation images\n`);
}
