// Image preprocessing against torchvision 0.14 + Pillow 9.4 (fixtures from
// test/fixtures/preprocess/make_preprocess.py): decoding, PIL's antialiased bilinear resize,
// torchvision's size and crop arithmetic, scaling and normalisation, and the CLI command.
//
// Tolerance: the tensor before normalisation (in [0, 1]) may differ from torchvision's by at most
// 2/255 anywhere. Largest differences measured here (sharp 0.35.5: mozjpeg, libwebp 1.6), in
// units of 1/255, over both resize sizes (256, 232):
//   JPEG (4:2:0, 4:4:4, progressive, grey, CMYK, ICC profile)   0
//   PNG (RGB, RGBA, L, LA, P, P+tRNS, 1-bit, 16-bit grey, synthetic edges)   0
//   WebP (lossy RGB, lossless RGBA)   0
// i.e. the decoders give PIL's pixels and the resize is PIL's integer path bit for bit; the bound
// leaves room for another libjpeg-turbo or libwebp build rounding a chroma sample differently.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { unzipSync } from 'fflate';
import { readNpy } from '../src/io/npy.js';
import {
  ImageClassification,
  ImageFileError,
  defaultMaxPixels,
  centerCrop,
  centerCropPlan,
  decodeImage,
  readImage,
  resizeBilinear,
  resizedSize,
  toRgb,
  toTensor,
  type Pixels,
  type RgbImage,
} from '../src/preprocess/index.js';
import { fixturePath, repoRoot } from './helpers/paths.js';

const TOLERANCE = 2; // in units of 1/255

interface Manifest {
  crop: number;
  mean: number[];
  std: number[];
  images: { file: string; mode: string; width: number; height: number }[];
  cases: { file: string; resize: number; resized: [number, number]; cropTop: number; cropLeft: number }[];
  normalized: { rows: [number, number]; cols: [number, number]; values: Record<string, number[]> };
}

/** Pixels are base64 of uint8 bytes: inputs HWC, pipeline outputs CHW. */
interface UnitCases {
  resize: { mode: string; channels: number; width: number; height: number; outWidth: number; outHeight: number; input: string; output: string }[];
  pipeline: { width: number; height: number; resize: number; crop: number; input: string; output: string }[];
  convert: { mode: string; channels: number; width: number; height: number; input: string; output: string }[];
}

function bytes(base64: string): Uint8Array {
  return new Uint8Array(Buffer.from(base64, 'base64'));
}

const manifest = JSON.parse(readFileSync(fixturePath('preprocess', 'manifest.json'), 'utf8')) as Manifest;
const units = JSON.parse(readFileSync(fixturePath('preprocess', 'resize_cases.json'), 'utf8')) as UnitCases;
const expectedZip = unzipSync(readFileSync(fixturePath('preprocess', 'expected.npz')));

/**
 * torchvision's uint8 crop [3, H, W] for "<file>/<resize>". Stored as one plane when the channels
 * are equal, as residuals of the predictor left + up - upleft (mod 256): a running sum undoes it.
 */
function expectedCrop(name: string, resize: number): Uint8Array {
  const entry = expectedZip[`${name}/${resize}.npy`];
  assert.ok(entry, `expected.npz has no ${name}/${resize}`);
  const residual = readNpy(entry);
  const [planes, h, w] = residual.shape;
  const r = residual.data;
  const a = new Uint8Array(planes * h * w);
  for (let p = 0; p < planes; p++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = (p * h + y) * w + x;
        const left = x > 0 ? a[i - 1] : 0;
        const up = y > 0 ? a[i - w] : 0;
        const upLeft = x > 0 && y > 0 ? a[i - w - 1] : 0;
        a[i] = (Number(r[i]) + left + up - upLeft) & 255;
      }
    }
  }
  if (planes === 3) return a;
  const rgb = new Uint8Array(3 * h * w);
  for (let c = 0; c < 3; c++) rgb.set(a, c * h * w);
  return rgb;
}

/** HWC RGB bytes → CHW, the layout of the expected crops. */
function chw(image: RgbImage): Uint8Array {
  const { width, height, data } = image;
  const out = new Uint8Array(3 * width * height);
  for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) out[c * width * height + i] = data[i * 3 + c];
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function formatOf(file: string): string {
  return { '.jpg': 'jpeg', '.png': 'png', '.webp': 'webp' }[extname(file)]!;
}

test('every fixture: the tensor before normalisation is within 2/255 of torchvision + PIL', async (t) => {
  const worst: Record<string, number> = { jpeg: 0, png: 0, webp: 0 };
  const decoded = new Map<string, RgbImage>();
  for (const c of manifest.cases) {
    if (!decoded.has(c.file)) decoded.set(c.file, await readImage(fixturePath('preprocess', c.file)));
    const image = decoded.get(c.file)!;
    const preset = new ImageClassification({ resizeSize: c.resize, cropSize: manifest.crop });
    assert.deepEqual(resizedSize(image.width, image.height, c.resize), c.resized, `${c.file}: resized size`);
    const plan = centerCropPlan(...c.resized, manifest.crop, manifest.crop);
    assert.deepEqual([plan.top, plan.left], [c.cropTop, c.cropLeft], `${c.file}: crop offsets`);
    const ours = chw(preset.resizeAndCrop(image));
    const name = c.file.replace('images/', '');
    const diff = maxDiff(ours, expectedCrop(name, c.resize));
    assert.ok(diff <= TOLERANCE, `${c.file} at resize ${c.resize}: max difference ${diff}/255 > ${TOLERANCE}/255`);
    worst[formatOf(c.file)] = Math.max(worst[formatOf(c.file)], diff);
  }
  t.diagnostic(`largest differences in 1/255: ${JSON.stringify(worst)}`);
});

test('every fixture decodes to the size PIL reports', async () => {
  for (const info of manifest.images) {
    const image = await readImage(fixturePath('preprocess', info.file));
    assert.deepEqual([image.width, image.height, image.channels], [info.width, info.height, 3], info.file);
  }
});

test("normalisation is torch's float32 arithmetic bit for bit", () => {
  // Normalises torchvision's own uint8 crops, so that only the arithmetic is under test here.
  const { rows, cols, values } = manifest.normalized;
  for (const [name, patch] of Object.entries(values)) {
    const crop = expectedCrop(name, 256);
    const plane = 224 * 224;
    const hwc = new Uint8Array(3 * plane);
    for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) hwc[i * 3 + c] = crop[c * plane + i];
    const x = toTensor([{ width: 224, height: 224, channels: 3, data: hwc }], manifest.mean, manifest.std);
    assert.deepEqual(x.shape, [1, 3, 224, 224]);
    const ours: number[] = [];
    for (let c = 0; c < 3; c++) {
      for (let y = rows[0]; y < rows[1]; y++) for (let xx = cols[0]; xx < cols[1]; xx++) ours.push(x.f32[(c * 224 + y) * 224 + xx]);
    }
    assert.deepEqual(ours, patch.map(Math.fround), name);
  }
});

test("resize: PIL's Image.resize(BILINEAR) output bit for bit (L and RGB, down, up, mixed, 1-pixel)", () => {
  for (const c of units.resize) {
    const out = resizeBilinear({ width: c.width, height: c.height, channels: c.channels, data: bytes(c.input) }, c.outWidth, c.outHeight);
    assert.deepEqual([out.width, out.height, out.channels], [c.outWidth, c.outHeight, c.channels]);
    assert.deepEqual(out.data, bytes(c.output), `${c.mode} ${c.width}x${c.height} → ${c.outWidth}x${c.outHeight}`);
  }
});

test('resize then crop of tiny images, including a crop larger than the image (zero padding), bit for bit', () => {
  for (const c of units.pipeline) {
    const image: Pixels = { width: c.width, height: c.height, channels: 3, data: bytes(c.input) };
    const crop = new ImageClassification({ resizeSize: c.resize, cropSize: c.crop }).resizeAndCrop(image);
    assert.deepEqual(chw(crop), bytes(c.output), `${c.width}x${c.height}, resize ${c.resize}, crop ${c.crop}`);
  }
});

test("toRgb is PIL's convert('RGB'): grey copied, alpha dropped", () => {
  for (const c of units.convert) {
    const rgb = toRgb({ width: c.width, height: c.height, channels: c.channels, data: bytes(c.input) });
    assert.deepEqual(rgb.data, bytes(c.output), c.mode);
  }
});

test("torchvision's size arithmetic and Python's round() for crop offsets", () => {
  assert.deepEqual(resizedSize(451, 300, 256), [384, 256]); // int(256 * 451 / 300) = int(384.85)
  assert.deepEqual(resizedSize(267, 427, 232), [232, 371]);
  assert.deepEqual(resizedSize(300, 300, 232), [232, 232]);
  // (257 - 224) / 2 = 16.5 rounds to 16, (259 - 224) / 2 = 17.5 to 18.
  assert.deepEqual(centerCropPlan(256, 257, 224, 224), { padLeft: 0, padTop: 0, top: 16, left: 16 });
  assert.deepEqual(centerCropPlan(259, 224, 224, 224), { padLeft: 0, padTop: 0, top: 0, left: 18 });
  // A crop larger than the image: pad (crop - size) // 2 before, the rest after.
  assert.deepEqual(centerCropPlan(5, 10, 8, 4), { padLeft: 1, padTop: 0, top: 3, left: 0 });
  const padded = centerCrop({ width: 1, height: 1, channels: 1, data: Uint8Array.of(9) }, 2, 3);
  assert.deepEqual(Array.from(padded.data), [0, 0, 9, 0, 0, 0]);
});

test('a batch is the single-image tensors stacked: [N, 3, crop, crop]', async () => {
  const a = await readImage(fixturePath('preprocess', 'images', 'chelsea_451x300.jpg'));
  const b = await readImage(fixturePath('preprocess', 'images', 'camera_gray_150x200.png'));
  const preset = new ImageClassification({ resizeSize: 232 });
  const batch = preset.forward([a, b]);
  assert.deepEqual(batch.shape, [2, 3, 224, 224]);
  const n = 3 * 224 * 224;
  assert.deepEqual(batch.f32.subarray(0, n), preset.forward(a).f32);
  assert.deepEqual(batch.f32.subarray(n), preset.forward(b).f32);
  // Unnormalised, toTensor is v / 255 in float32.
  const unit = toTensor([preset.resizeAndCrop(a)]);
  assert.equal(unit.f32[0], Math.fround(chw(preset.resizeAndCrop(a))[0] / 255));
});

test('corrupt, truncated and unsupported files are ImageFileErrors', async () => {
  const jpeg = readFileSync(fixturePath('preprocess', 'images', 'chelsea_451x300.jpg'));
  await assert.rejects(decodeImage(new Uint8Array(100)), ImageFileError);
  await assert.rejects(decodeImage(jpeg.subarray(0, jpeg.length >> 1)), ImageFileError);
  const png = readFileSync(fixturePath('preprocess', 'images', 'noise_32x24.png'));
  await assert.rejects(decodeImage(png.subarray(0, png.length - 200)), ImageFileError);
  const gif = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
  await assert.rejects(decodeImage(gif), (e: Error) => e instanceof ImageFileError && /unsupported image format 'gif'/.test(e.message));
  await assert.rejects(readImage(join(tmpdir(), 'no-such-image.png')), /cannot read image .*ENOENT/);
});

/** CRC-32 (ISO-HDLC), as PNG chunks carry it. */
function crc32(bytes: Uint8Array): number {
  let crc = ~0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

test('a header claiming more pixels than its file could hold is refused before decoding', async () => {
  // A 2,396-byte PNG whose IHDR (CRC fixed up) claims 16383×16383: 268 MP, 805 MB of RGB.
  const png = new Uint8Array(readFileSync(fixturePath('preprocess', 'images', 'noise_32x24.png')));
  const ihdr = new DataView(png.buffer, 12, 17); // "IHDR", width, height, …
  ihdr.setUint32(4, 16383);
  ihdr.setUint32(8, 16383);
  new DataView(png.buffer).setUint32(29, crc32(png.subarray(12, 29)));
  // A 35,042-byte JPEG whose frame header claims 16000×16000.
  const jpeg = new Uint8Array(readFileSync(fixturePath('preprocess', 'images', 'chelsea_451x300.jpg')));
  const sof = jpeg.findIndex((b, i) => b === 0xff && (jpeg[i + 1] === 0xc0 || jpeg[i + 1] === 0xc2));
  new DataView(jpeg.buffer).setUint16(sof + 5, 16000);
  new DataView(jpeg.buffer).setUint16(sof + 7, 16000);
  for (const [bytes, claim] of [[png, '16383×16383'], [jpeg, '16000×16000']] as const) {
    const start = performance.now();
    await assert.rejects(decodeImage(bytes), (e: Error) => e instanceof ImageFileError &&
      new RegExp(`header claims ${claim} pixels, more than the ${defaultMaxPixels(bytes.length)} a ${bytes.length}-byte file may claim`).test(e.message));
    assert.ok(performance.now() - start < 500, `${claim}: ${(performance.now() - start).toFixed(0)} ms`);
  }
  assert.equal(defaultMaxPixels(100), 2 ** 24);
  assert.equal(defaultMaxPixels(1e6), 1024e6 > 2 * 89_478_485 ? 2 * 89_478_485 : 1024e6);
  // The limit is an option: the 32×24 original within 768 pixels, not within 767.
  const original = readFileSync(fixturePath('preprocess', 'images', 'noise_32x24.png'));
  assert.equal((await decodeImage(original, { maxPixels: 768 })).width, 32);
  await assert.rejects(decodeImage(original, { maxPixels: 767 }), /claims 32×24 pixels, more than the 767/);
});

const bin = join(repoRoot, 'bin', 'resnet.js');
const work = mkdtempSync(join(tmpdir(), 'resnet-preprocess-'));

function resnet(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('resnet preprocess writes the NCHW float32 tensor the library computes', async () => {
  const file = fixturePath('preprocess', 'images', 'rocket_portrait_progressive_267x427.jpg');
  const out = join(work, 'x.npy');
  const r = resnet('preprocess', file, '--resize', '232', '-o', out);
  assert.equal(r.status, 0, r.stderr);
  const x = readNpy(readFileSync(out));
  assert.deepEqual(x.shape, [1, 3, 224, 224]);
  assert.deepEqual(x.f32, new ImageClassification({ resizeSize: 232 }).forward(await readImage(file)).f32);
  const small = resnet('preprocess', file, '--resize', '64', '--crop', '32', '-o', out);
  assert.equal(small.status, 0, small.stderr);
  assert.deepEqual(readNpy(readFileSync(out)).shape, [1, 3, 32, 32]);
});

test('resnet preprocess: one-line errors, exit 2 for bad arguments and 3 for bad files', () => {
  const image = fixturePath('preprocess', 'images', 'checker_97x131.png');
  const out = join(work, 'y.npy');
  const help = resnet('preprocess', '--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Exit codes/);
  for (const args of [['preprocess', image], ['preprocess', image, '--resize', '0', '-o', out], ['preprocess', image, '--crop', 'x', '-o', out]]) {
    const r = resnet(...args);
    assert.equal(r.status, 2, args.join(' '));
  }
  const corrupt = join(work, 'corrupt.jpg');
  writeFileSync(corrupt, readFileSync(fixturePath('preprocess', 'images', 'chelsea_451x300.jpg')).subarray(0, 3000));
  for (const file of [join(work, 'missing.png'), corrupt, fixturePath('preprocess', 'manifest.json')]) {
    const r = resnet('preprocess', file, '-o', out);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /^resnet: [^\n]+\n$/);
  }
  const unwritable = resnet('preprocess', image, '-o', join(work, 'no', 'dir', 'x.npy'));
  assert.equal(unwritable.status, 3);
  assert.match(unwritable.stderr, /^resnet: cannot write output/);
});
