// Data sets, transforms and the loader (src/data). Transforms against torchvision 0.14 on PIL
// images (test/fixtures/data/make_transforms.py): crop boxes from the same injected uniforms
// must be equal, and every pixel result exactly equal (PIL's resize is integer arithmetic,
// ToTensor and Normalize round to float32 as ours do), so the tolerance is 0. Fashion-MNIST
// from Debian's dataset-fashion-mnist package where it is installed; ImageFolder on PNG
// folders written here; the loader's order, batching, seeding and prefetching.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { Tensor } from '../src/core/tensor.js';
import { Generator } from '../src/core/rng.js';
import type { Pixels } from '../src/preprocess/image.js';
import { ImageClassification } from '../src/preprocess/transforms.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { getModelWeights } from '../src/weights/load.js';
import {
  CenterCrop, Compose, DataLoader, FashionMNIST, FASHION_MNIST_DEBIAN_ROOT, Grayscale, ImageFolder, Normalize,
  RandomCrop, RandomHorizontalFlip, RandomResizedCrop, Resize, Subset, TensorDataset, randomSplit, ToTensor, crop, hflip, pixelsToTensor,
  presetTransform, randomCropBox, randomResizedCropBox, type Batch, type Dataset, type Sample,
} from '../src/data/index.js';
import { maxAbsDiff } from './helpers/compare.js';
import { fixturePath } from './helpers/paths.js';

interface ResizedCropCase { width: number; height: number; scale: [number, number]; ratio: [number, number]; uniforms: number[]; used: number; box: number[] }
interface RandomCropCase { name: string; uniforms: number[]; used: number; box: number[] }
interface OpCase {
  name: string; op: string; width: number; height: number; channels: number;
  box?: number[]; size?: number[] | number; mean?: number[]; std?: number[]; resize?: number; crop?: number; uniforms?: number[]; used?: number;
}

const cases = JSON.parse(readFileSync(fixturePath('data', 'transforms.json'), 'utf8')) as {
  randomResizedCrop: ResizedCropCase[]; randomCrop: RandomCropCase[]; ops: OpCase[];
};
const expected = readSafetensors(readFileSync(fixturePath('data', 'transforms.safetensors')));

/** make_transforms.py's synthetic image: (x·37 + y·91 + k·53 + (x·y) mod 17) mod 256. */
function pattern(width: number, height: number, channels: number): Pixels {
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let k = 0; k < channels; k++) data[(y * width + x) * channels + k] = (x * 37 + y * 91 + k * 53 + ((x * y) % 17)) % 256;
    }
  }
  return { width, height, channels, data };
}

/** The fixture's uniforms one by one, counting how many were drawn. */
function injected(us: readonly number[]): { random: () => number; used: () => number } {
  let k = 0;
  return { random: () => us[k++], used: () => k };
}

/** A Generator whose random() replays the fixture's uniforms (as torch.rand / randint / uniform_ were replaced there). */
function replaying(us: readonly number[]): Generator & { used: number } {
  const g = new Generator(0) as Generator & { used: number };
  g.used = 0;
  g.random = () => us[g.used++];
  return g;
}

function assertExact(actual: Tensor, name: string): void {
  const want = expected.get(name)!;
  assert.deepEqual(actual.shape, want.shape, name);
  assert.equal(maxAbsDiff(actual, want), 0, name);
}

test('randomResizedCropBox: torchvision\'s get_params boxes for the same uniforms, the center-crop fallback included', () => {
  for (const c of cases.randomResizedCrop) {
    const draws = injected(c.uniforms);
    const box = randomResizedCropBox(c.width, c.height, c.scale, c.ratio, draws.random);
    assert.deepEqual([box.top, box.left, box.height, box.width], c.box, `${c.width}x${c.height} scale ${c.scale} ratio ${c.ratio}`);
    assert.equal(draws.used(), c.used, `${c.width}x${c.height}: uniforms drawn`);
  }
  assert.ok(cases.randomResizedCrop.some((c) => c.used === 20), 'the fixtures exercise the fallback');
});

test('RandomCrop(28, padding 4): torchvision\'s boxes and zero-padded crops', () => {
  for (const c of cases.randomCrop) {
    const draws = injected(c.uniforms);
    const box = randomCropBox(36, 36, 28, 28, draws.random);
    assert.deepEqual([box.top, box.left, box.height, box.width], c.box, c.name);
    assert.equal(draws.used(), c.used);
    assertExact(pixelsToTensor(new RandomCrop(28, { padding: 4 }).apply(pattern(28, 28, 1), replaying(c.uniforms))), c.name);
  }
  assert.deepEqual(randomCropBox(28, 28, 28, 28, () => assert.fail('no draw for an equal size')), { top: 0, left: 0, height: 28, width: 28 });
  assert.throws(() => randomCropBox(20, 20, 28, 28, Math.random), /larger than input image size/);
});

test('crop + resize, flip, grayscale, normalize, resize + center crop: torchvision\'s tensors exactly', () => {
  for (const c of cases.ops) {
    const image = pattern(c.width, c.height, c.channels);
    let actual: Tensor;
    switch (c.op) {
      case 'resized_crop': {
        const [top, left, height, width] = c.box!;
        const [h, w] = c.size as number[];
        actual = pixelsToTensor(new Resize([h, w]).apply(crop(image, { top, left, height, width })));
        break;
      }
      case 'hflip':
        actual = pixelsToTensor(hflip(image));
        break;
      case 'grayscale':
        actual = pixelsToTensor(new Grayscale().apply(image));
        break;
      case 'normalize':
        actual = new Normalize(c.mean!, c.std!).apply(new ToTensor().apply(image));
        break;
      case 'resize_center_crop':
        actual = pixelsToTensor(new CenterCrop(c.crop!).apply(new Resize(c.resize!).apply(image)));
        break;
      case 'train_pipeline': {
        const generator = replaying(c.uniforms!);
        const pipeline = new Compose<Pixels, Tensor>([new RandomResizedCrop(c.size as number), new RandomHorizontalFlip(), new ToTensor(), new Normalize(c.mean!, c.std!)]);
        actual = pipeline.apply(image, generator);
        assert.equal(generator.used, c.used, 'uniforms drawn by the pipeline');
        break;
      }
      default:
        assert.fail(`unknown op ${c.op}`);
    }
    assertExact(actual, c.name);
  }
});

test('presetTransform is ImageClassification\'s preset, image by image', () => {
  const preset = new ImageClassification({ resizeSize: 40, cropSize: 32 });
  const image = pattern(64, 48, 3);
  const one = presetTransform(preset).apply(image, new Generator(0));
  assert.equal(maxAbsDiff(one.reshape([1, 3, 32, 32]), preset.forward(image)), 0);
  // A weights descriptor's transforms (resnet50's IMAGENET1K_V2: 232, 224) make the same preset.
  const v2 = getModelWeights('resnet50').IMAGENET1K_V2.transforms!;
  const big = pattern(300, 260, 3);
  assert.equal(maxAbsDiff(presetTransform(v2).apply(big, new Generator(0)).reshape([1, 3, 224, 224]), new ImageClassification(v2).forward(big)), 0);
  assert.equal(v2.resizeSize, 232);
});

test('transforms refuse bad arguments', () => {
  assert.throws(() => new RandomResizedCrop(0), /size must be positive integers/);
  assert.throws(() => new RandomResizedCrop(8, { scale: [1, 0.5] }), /scale and ratio should be of kind \(min, max\)/);
  assert.throws(() => new RandomCrop(8, { padding: -1 }), /padding must be a non-negative integer/);
  assert.throws(() => new Normalize([0.5], [0]), /std non-zero/);
  assert.throws(() => new Normalize([0.5], [0.5]).apply(Tensor.zeros([3, 2, 2])), /1 means for a tensor of 3 channels/);
});

// --- Fashion-MNIST ------------------------------------------------------------------------------

/** An IDX file of unsigned bytes: magic 0 0 8 ndim, big-endian dimensions, data. */
function idx(shape: number[], data: Uint8Array): Uint8Array {
  const header = new Uint8Array(4 + 4 * shape.length);
  header.set([0, 0, 8, shape.length]);
  const view = new DataView(header.buffer);
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  const out = new Uint8Array(header.length + data.length);
  out.set(header);
  out.set(data, header.length);
  return out;
}

test('FashionMNIST reads IDX files, gzipped or not, from a root; a missing file names the Debian package', async () => {
  const root = mkdtempSync(join(tmpdir(), 'fmnist-'));
  try {
    const images = Uint8Array.from({ length: 3 * 4 * 5 }, (_, i) => i);
    writeFileSync(join(root, 't10k-images-idx3-ubyte'), idx([3, 4, 5], images));
    writeFileSync(join(root, 't10k-labels-idx1-ubyte.gz'), gzipSync(idx([3], Uint8Array.of(9, 0, 4))));
    const test = await FashionMNIST.load({ root, train: false });
    assert.equal(test.length, 3);
    const s = test.get(1);
    assert.equal(s.target, 0);
    assert.deepEqual([s.image.width, s.image.height, s.image.channels], [5, 4, 1]);
    assert.deepEqual([...s.image.data], [...images.subarray(20, 40)]);
    assert.equal(test.classes[9], 'Ankle boot');
    await assert.rejects(FashionMNIST.load({ root, train: true }), /no train-images-idx3-ubyte or train-images-idx3-ubyte\.gz .*dataset-fashion-mnist/);
    writeFileSync(join(root, 'train-images-idx3-ubyte'), idx([2, 2, 2], new Uint8Array(7)));
    writeFileSync(join(root, 'train-labels-idx1-ubyte'), idx([2], new Uint8Array(2)));
    await assert.rejects(FashionMNIST.load({ root }), /7 data bytes, shape \[2, 2, 2\] needs 8/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('Fashion-MNIST from Debian\'s dataset-fashion-mnist: 60,000 + 10,000 28×28 images, 10 balanced classes', async (t) => {
  if (!existsSync(FASHION_MNIST_DEBIAN_ROOT)) {
    t.skip(`${FASHION_MNIST_DEBIAN_ROOT} missing (apt-get install dataset-fashion-mnist)`);
    return;
  }
  for (const [train, n] of [[true, 60000], [false, 10000]] as const) {
    const data = await FashionMNIST.load({ train });
    assert.equal(data.length, n);
    assert.deepEqual([data.height, data.width], [28, 28]);
    // The data set's README: each class has 6,000 training and 1,000 test images.
    const counts = new Array<number>(10).fill(0);
    for (const label of data.targets) counts[label]++;
    assert.deepEqual(counts, new Array<number>(10).fill(n / 10));
  }
});

// --- ImageFolder ----------------------------------------------------------------------------------

async function writePng(path: string, image: Pixels): Promise<void> {
  await sharp(Buffer.from(image.data), { raw: { width: image.width, height: image.height, channels: image.channels as 1 | 3 } }).png().toFile(path);
}

test('ImageFolder: sorted classes, sorted files, subfolders, non-images skipped; decoded as RGB, transformed', async () => {
  const root = mkdtempSync(join(tmpdir(), 'folder-'));
  try {
    for (const dir of ['dog', 'cat', 'cat/more', 'bird']) mkdirSync(join(root, dir), { recursive: true });
    await writePng(join(root, 'dog', 'b.png'), pattern(6, 5, 3));
    await writePng(join(root, 'dog', 'a.PNG'), pattern(7, 5, 1));
    await writePng(join(root, 'cat', 'z.png'), pattern(4, 4, 3));
    await writePng(join(root, 'cat', 'more', 'a.png'), pattern(5, 4, 3));
    await writePng(join(root, 'bird', 'x.png'), pattern(3, 3, 3));
    writeFileSync(join(root, 'cat', 'notes.txt'), 'not an image');
    const data = await ImageFolder.load(root);
    assert.deepEqual(data.classes, ['bird', 'cat', 'dog']);
    assert.deepEqual(data.samples.map(([path, target]) => [path.slice(root.length + 1), target]), [
      ['bird/x.png', 0], ['cat/z.png', 1], ['cat/more/a.png', 1], ['dog/a.PNG', 2], ['dog/b.png', 2],
    ]);
    const grey = await data.get(3);
    assert.equal(grey.target, 2);
    assert.equal(grey.image.channels, 3); // grey PNG → RGB, as ImageFolder's loader converts
    assert.deepEqual([...grey.image.data.subarray(0, 6)], [0, 0, 0, 37, 37, 37]);

    const transformed = await ImageFolder.load(root, { transform: new Compose<Pixels, Tensor>([new Resize([4, 4]), new ToTensor()]) });
    const s = await transformed.get(4, new Generator(0));
    assert.deepEqual(s.image.shape, [3, 4, 4]);
    // Another view of the same listing (resnet train's validation split of a flat folder).
    const view = data.withTransform(new Compose<Pixels, Tensor>([new Resize([4, 4]), new ToTensor()]));
    assert.deepEqual(view.classes, data.classes);
    assert.deepEqual(view.samples, data.samples);
    assert.deepEqual((await view.get(4, new Generator(0))).image.f32, s.image.f32);
    assert.equal(data.transform, null, 'the original keeps its own transform');

    mkdirSync(join(root, 'empty'));
    await assert.rejects(ImageFolder.load(root), /found no valid file for the classes empty/);
    await assert.rejects(ImageFolder.load(join(root, 'nowhere')), /cannot read/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

// --- DataLoader -----------------------------------------------------------------------------------

/** n one-channel 2×2 images whose pixels all hold their index, targets index mod 3. */
function indexed(n: number): TensorDataset {
  const images = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) images.fill(i, i * 4, (i + 1) * 4);
  return new TensorDataset(new Tensor(images, [n, 1, 2, 2]), Array.from({ length: n }, (_, i) => i % 3));
}

async function collect(batches: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of batches) out.push(b);
  return out;
}

test('DataLoader: batches in order, the last one short or dropped; images NCHW float32, targets int64', async () => {
  const data = indexed(10);
  const loader = new DataLoader(data, { batchSize: 3 });
  assert.equal(loader.length, 4);
  const batches = await collect(loader);
  assert.deepEqual(batches.map((b) => [...b.indices]), [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]);
  assert.deepEqual(batches[1].images.shape, [3, 1, 2, 2]);
  assert.deepEqual([...batches[1].images.f32.filter((_, i) => i % 4 === 0)], [3, 4, 5]);
  assert.equal(batches[1].targets.dtype, 'int64');
  assert.deepEqual([...batches[1].targets.data], [0n, 1n, 2n]);
  const dropped = new DataLoader(data, { batchSize: 3, dropLast: true });
  assert.equal(dropped.length, 3);
  assert.equal((await collect(dropped)).length, 3);
});

test('DataLoader shuffling: a permutation per epoch, a function of (seed, epoch) only; setEpoch and a start batch resume it', async () => {
  const data = indexed(50);
  const loader = new DataLoader(data, { batchSize: 8, shuffle: true, seed: 7 });
  const epoch0 = (await collect(loader)).flatMap((b) => [...b.indices]);
  const epoch1 = (await collect(loader)).flatMap((b) => [...b.indices]);
  assert.equal(loader.epoch, 2);
  assert.deepEqual([...epoch0].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  assert.notDeepEqual(epoch0, epoch1);
  assert.notDeepEqual(epoch0, [...epoch0].sort((a, b) => a - b));

  const again = new DataLoader(data, { batchSize: 8, shuffle: true, seed: 7 });
  again.setEpoch(1);
  assert.deepEqual((await collect(again)).flatMap((b) => [...b.indices]), epoch1);
  const tail = await collect(again.epochBatches(0, { start: 4 }));
  assert.deepEqual(tail.flatMap((b) => [...b.indices]), epoch0.slice(32));
  const otherSeed = new DataLoader(data, { batchSize: 8, shuffle: true, seed: 8 });
  assert.notDeepEqual((await collect(otherSeed)).flatMap((b) => [...b.indices]), epoch0);
});

test('DataLoader random transforms: the same batches whatever the prefetch depth and loading order', async () => {
  const data = indexed(20);
  // A random transform whose result shows its draws: each pixel plus a uniform.
  const noisy = { apply: (x: Tensor, g: Generator) => new Tensor(x.f32.map((v) => v + g.random()), x.shape) };
  // Samples that resolve in reverse order of request, to shake the interleaving.
  const slow: Dataset<Tensor> = {
    length: data.length,
    get: (i: number) => new Promise<Sample<Tensor>>((resolve) => setTimeout(() => resolve(data.get(i)), 20 - i)),
  };
  const run = async (dataset: Dataset<Tensor>, prefetch: number): Promise<Float32Array[]> =>
    (await collect(new DataLoader(dataset, { batchSize: 6, shuffle: true, seed: 3, transform: noisy, prefetch }))).map((b) => b.images.f32);
  const reference = await run(data, 0);
  assert.deepEqual(await run(data, 3), reference);
  assert.deepEqual(await run(slow, 2), reference);
  // Resumed inside the epoch: the remaining batches, random draws included, as uninterrupted.
  const resumed = new DataLoader(data, { batchSize: 6, shuffle: true, seed: 3, transform: noisy });
  assert.deepEqual((await collect(resumed.epochBatches(0, { start: 2 }))).map((b) => b.images.f32), reference.slice(2));
});

test('Subset and randomSplit: seeded, disjoint, covering; the loader takes a subset like any data set', async () => {
  const data = indexed(20);
  const [train, val] = randomSplit(data, [15, 5], 4);
  assert.deepEqual([train.length, val.length], [15, 5]);
  assert.deepEqual([...train.indices, ...val.indices].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
  assert.deepEqual([...randomSplit(data, [15, 5], 4)[1].indices], [...val.indices]);
  assert.notDeepEqual([...randomSplit(data, [15, 5], 5)[1].indices], [...val.indices]);
  const batches = await collect(new DataLoader(val, { batchSize: 5 }));
  assert.deepEqual([...batches[0].images.f32.filter((_, i) => i % 4 === 0)], [...val.indices]);
  assert.deepEqual([...batches[0].indices], [0, 1, 2, 3, 4]); // the loader's indices are the subset's
  assert.throws(() => randomSplit(data, [15, 4]), /must be counts summing to the data set's 20/);
  assert.throws(() => new Subset(data, [20]), /index 20 is out of range for 20 samples/);
});

test('DataLoader errors: a sample that fails rejects its batch where it is awaited; mixed sizes and missing ToTensor are named', async () => {
  const failing: Dataset<Tensor> = {
    length: 10,
    get: async (i: number) => {
      if (i === 7) throw new Error('sample 7 is broken');
      return indexed(10).get(i);
    },
  };
  const seen: number[] = [];
  await assert.rejects(async () => {
    for await (const b of new DataLoader(failing, { batchSize: 2, prefetch: 4 })) seen.push(...b.indices);
  }, /sample 7 is broken/);
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5]);

  const mixed: Dataset<Tensor> = { length: 2, get: (i: number) => ({ image: Tensor.zeros([1, 2 + i, 2]), target: 0 }) };
  await assert.rejects(collect(new DataLoader(mixed, { batchSize: 2 })), /sample 1 is \[1, 3, 2\], sample 0 \[1, 2, 2\]: a batch needs one size/);
  const pixels: Dataset<Pixels> = { length: 1, get: () => ({ image: pattern(2, 2, 1), target: 0 }) };
  await assert.rejects(collect(new DataLoader(pixels)), /not a float32 \[C, H, W\] tensor; end the transform with ToTensor/);
  assert.throws(() => new DataLoader(indexed(2), { batchSize: 0 }), /batchSize must be a positive integer/);
});
