// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60,000 training and 10,000 test images of 28×28
// grey clothing in 10 classes, read from the IDX files of Debian's `dataset-fashion-mnist`
// package (or any folder holding them, gzipped or not), as torchvision's FashionMNIST serves
// them: 8-bit grey images (one channel) and class indices. Reading the files needs Node
// (node:fs, imported when `load` is called); parseIdx is plain TypeScript.

import { gunzipSync } from 'fflate';
import type { Generator } from '../core/rng.js';
import type { Pixels } from '../preprocess/image.js';
import { checkIndex, transformSample, type Dataset, type Sample } from './dataset.js';
import type { Transform } from './transforms.js';

/** Where Debian's dataset-fashion-mnist package installs the four files. */
export const FASHION_MNIST_DEBIAN_ROOT = '/usr/share/datasets/fashion-mnist';

/** torchvision's FashionMNIST.classes, by label. */
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
]);

/** An IDX file's unsigned bytes and dimensions (LeCun's MNIST format: big-endian header). */
export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

/** Parses an IDX file of unsigned bytes (type 0x08), gzipped (by its magic) or not. */
export function parseIdx(bytes: Uint8Array, what = 'IDX file'): IdxArray {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new RangeError(`${what}: not an IDX file (bad magic)`);
  if (bytes[2] !== 0x08) throw new RangeError(`${what}: IDX element type 0x${bytes[2].toString(16)} is not unsigned bytes (0x08)`);
  const ndim = bytes[3];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = 4 + 4 * ndim;
  if (bytes.length < header) throw new RangeError(`${what}: truncated header`);
  const shape = Array.from({ length: ndim }, (_, d) => view.getUint32(4 + 4 * d));
  const size = shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== header + size) throw new RangeError(`${what}: ${bytes.length - header} data bytes, shape [${shape.join(', ')}] needs ${size}`);
  return { shape, data: bytes.subarray(header) };
}

async function readIdx(root: string, name: string, rootGiven: boolean): Promise<IdxArray> {
  const [{ readFile }, { join }] = await Promise.all([import('node:fs/promises'), import('node:path')]);
  for (const file of [name, `${name}.gz`]) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(join(root, file));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    return parseIdx(bytes, join(root, file));
  }
  const hint = rootGiven
    ? 'the folder given as root should hold the four IDX files'
    : 'pass the folder holding the four IDX files as root';
  throw new Error(`Fashion-MNIST: no ${name} or ${name}.gz in ${root}; install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist), or ${hint}`);
}

export interface FashionMNISTOptions<X> {
  /** The folder with the four IDX files; Debian's package's folder by default. */
  root?: string;
  /** The 60,000 training images (true, default) or the 10,000 test images. */
  train?: boolean;
  /** Applied to each 28×28 one-channel image. */
  transform?: Transform<Pixels, X>;
}

/** torchvision's FashionMNIST: `await FashionMNIST.load({ train })`, then samples by index. */
export class FashionMNIST<X = Pixels> implements Dataset<X> {
  readonly classes = FASHION_MNIST_CLASSES;
  readonly train: boolean;
  /** All images, (N, 28, 28) bytes. */
  readonly images: Uint8Array;
  /** Class index of each image. */
  readonly targets: Uint8Array;
  readonly height: number;
  readonly width: number;
  readonly transform: Transform<Pixels, X> | null;

  private constructor(images: IdxArray, labels: IdxArray, train: boolean, transform: Transform<Pixels, X> | null) {
    if (images.shape.length !== 3 || labels.shape.length !== 1 || images.shape[0] !== labels.shape[0]) {
      throw new RangeError(`Fashion-MNIST: images [${images.shape.join(', ')}] and labels [${labels.shape.join(', ')}] do not pair up`);
    }
    this.images = images.data;
    this.targets = labels.data;
    [, this.height, this.width] = images.shape;
    this.train = train;
    this.transform = transform;
  }

  /** Reads the training or test split. A missing file's error names the Debian package. */
  static async load<X = Pixels>(options: FashionMNISTOptions<X> = {}): Promise<FashionMNIST<X>> {
    const root = options.root ?? FASHION_MNIST_DEBIAN_ROOT;
    const train = options.train ?? true;
    const prefix = train ? 'train' : 't10k';
    const [images, labels] = await Promise.all([
      readIdx(root, `${prefix}-images-idx3-ubyte`, options.root !== undefined),
      readIdx(root, `${prefix}-labels-idx1-ubyte`, options.root !== undefined),
    ]);
    return new FashionMNIST(images, labels, train, options.transform ?? null);
  }

  get length(): number {
    return this.targets.length;
  }

  /** Image `index` as one-channel pixels (a view of the data set's memory) and its class. */
  get(index: number, generator?: Generator): Sample<X> {
    checkIndex(index, this.length, 'FashionMNIST');
    const size = this.height * this.width;
    const image: Pixels = { width: this.width, height: this.height, channels: 1, data: this.images.subarray(index * size, (index + 1) * size) };
    const sample = { image, target: this.targets[index] };
    return this.transform ? transformSample(sample, this.transform, generator) : (sample as Sample<unknown> as Sample<X>);
  }
}
