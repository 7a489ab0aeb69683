// torchvision's ImageFolder: root/<class>/<image>, one folder per class, classes sorted by
// name and numbered from 0, files sorted within each class (os.walk order made stable, as
// torchvision's make_dataset sorts). JPEG, PNG and WebP files (by extension, as torchvision's
// IMG_EXTENSIONS picks them) decode on libuv's threads through src/preprocess (sharp, PIL's
// pixels, converted to RGB as ImageFolder's default loader does). Node only: node:fs is
// imported when `load` is called, so importing this module costs browsers nothing.

import type { Generator } from '../core/rng.js';
import { readImage } from '../preprocess/decode.js';
import type { RgbImage } from '../preprocess/image.js';
import { checkIndex, transformSample, type Dataset, type Sample } from './dataset.js';
import type { Transform } from './transforms.js';

/** The extensions ImageFolder takes, compared case-insensitively (the formats we decode). */
export const IMAGE_EXTENSIONS: readonly string[] = Object.freeze(['.jpg', '.jpeg', '.png', '.webp']);

export interface ImageFolderOptions<X> {
  /** Applied to each decoded RGB image. */
  transform?: Transform<RgbImage, X>;
}

/** Python's sorted() on str: by code point (JavaScript's default sort is by UTF-16 unit). */
function byCodePoint(a: string, b: string): number {
  const ca = [...a];
  const cb = [...b];
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const d = ca[i].codePointAt(0)! - cb[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return ca.length - cb.length;
}

/** dir/name, as node:path's join writes it for a folder given with or without a trailing separator. */
function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') || dir.endsWith('\\') ? `${dir}${name}` : `${dir}/${name}`;
}

/**
 * Every image file under `dir`, recursively (torchvision walks a class's subfolders too): a
 * folder's files sorted by name, then its subfolders' (sorted(os.walk(...)) visits a folder
 * before the folders inside it).
 */
async function imagesUnder(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => byCodePoint(a.name, b.name));
  const found = entries
    .filter((e) => !e.isDirectory() && IMAGE_EXTENSIONS.some((ext) => e.name.toLowerCase().endsWith(ext)))
    .map((e) => joinPath(dir, e.name));
  for (const sub of entries.filter((e) => e.isDirectory())) found.push(...(await imagesUnder(joinPath(dir, sub.name))));
  return found;
}

export class ImageFolder<X = RgbImage> implements Dataset<X> {
  readonly root: string;
  /** Class names: the folder names, sorted. */
  readonly classes: readonly string[];
  /** Class name → index. */
  readonly classToIdx: ReadonlyMap<string, number>;
  /** (path, class index) of every image, class by class, sorted (torchvision's `samples`). */
  readonly samples: readonly (readonly [string, number])[];
  readonly transform: Transform<RgbImage, X> | null;

  private constructor(root: string, classes: string[], samples: [string, number][], transform: Transform<RgbImage, X> | null) {
    this.root = root;
    this.classes = classes;
    this.classToIdx = new Map(classes.map((c, i) => [c, i]));
    this.samples = samples;
    this.transform = transform;
  }

  /** Lists `root`'s class folders and their images; a folder with no class or a class with no image is an error, as in torchvision. */
  static async load<X = RgbImage>(root: string, options: ImageFolderOptions<X> = {}): Promise<ImageFolder<X>> {
    const { readdir } = await import('node:fs/promises');
    let entries;
    try {
      entries = await readdir(root, { withFileTypes: true });
    } catch (e) {
      throw new Error(`ImageFolder: cannot read '${root}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
    }
    const classes = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort(byCodePoint);
    if (classes.length === 0) throw new Error(`ImageFolder: couldn't find any class folder in ${root}`);
    const samples: [string, number][] = [];
    const empty: string[] = [];
    for (const [index, name] of classes.entries()) {
      const files = await imagesUnder(joinPath(root, name));
      if (files.length === 0) empty.push(name);
      for (const file of files) samples.push([file, index]);
    }
    if (empty.length > 0) {
      throw new Error(`ImageFolder: found no valid file for the classes ${empty.join(', ')}; supported extensions are ${IMAGE_EXTENSIONS.join(', ')}`);
    }
    return new ImageFolder(root, classes, samples, options.transform ?? null);
  }

  get length(): number {
    return this.samples.length;
  }

  /** The same classes and images with another transform, without listing the folder again (a training and an evaluation view of one folder). */
  withTransform<Y>(transform: Transform<RgbImage, Y> | null): ImageFolder<Y> {
    return new ImageFolder<Y>(this.root, [...this.classes], this.samples.map(([path, target]): [string, number] => [path, target]), transform);
  }

  /** Decodes image `index` (an ImageFileError naming its path if it cannot be) and transforms it. */
  async get(index: number, generator?: Generator): Promise<Sample<X>> {
    checkIndex(index, this.length, 'ImageFolder');
    const [path, target] = this.samples[index];
    const sample = { image: await readImage(path), target };
    return this.transform ? transformSample(sample, this.transform, generator) : (sample as Sample<unknown> as Sample<X>);
  }
}
