// resnet-ts in a real browser (Debian's Chromium, headless, driven by playwright-core): a page
// whose script esbuild bundled with no configuration runs a ResNet-18 filled by the tests'
// formula on the wasm backend, and must give Node's logits; on a cross-origin isolated page with
// 2 threads (both taking part), elsewhere on 1 thread with one console warning that says why;
// in a Web Worker through ModelWorker; images preprocessed in the page equal Node's (PNG exactly,
// JPEG within 2/255: another decoder); weights by URL are checked, kept in the Cache Storage and
// not downloaded again. Skips where /usr/bin/chromium is missing.
//
// Tolerance for logits: max|page - node| <= 1e-5 * max|node logit| (the page runs the same .wasm;
// the reference backend sums in another order).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../src/core/tensor.js';
import { createReferenceBackend, withBackend, registerBackend } from '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/index.js';
import { resnet18 } from '../src/models/builders.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { decodeImage } from '../src/preprocess/decode.js';
import { ImageClassification } from '../src/preprocess/transforms.js';
import { deterministicInput, filledModel } from './helpers/fill.js';
import { fixturePath, repoRoot } from './helpers/paths.js';
import { browserSkipReason, bundle, launchChromium, openPage, serve, tempDir, type BrowserSession, type TestServer } from './helpers/browser.js';

const skip = browserSkipReason();
const SHAPE = [1, 3, 64, 64];
const CLASSES = 10;
const LOGIT_TOL = 1e-5;

/** Node's logits for the page's model and input, on the reference and the wasm backend. */
function nodeLogits(): { ref: Float32Array; wasm: Float32Array } {
  const model = filledModel(() => resnet18({ numClasses: CLASSES })).eval();
  const x = deterministicInput(SHAPE);
  const wasm = createWasmBackend({ threads: 1 });
  registerBackend('test-wasm-1', () => wasm);
  registerBackend('test-ref', createReferenceBackend);
  try {
    return {
      ref: withBackend('test-ref', () => model.forward(x)).f32.slice(),
      wasm: withBackend('test-wasm-1', () => model.forward(x)).f32.slice(),
    };
  } finally {
    wasm.dispose();
  }
}

function assertLogitsClose(actual: readonly number[], expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, what);
  const scale = Math.max(...expected.map(Math.abs));
  const worst = Math.max(...actual.map((v, i) => Math.abs(v - expected[i])));
  assert.ok(worst <= LOGIT_TOL * scale, `${what}: max |Δ| ${worst} > ${LOGIT_TOL} × ${scale}`);
}

describe('in Chromium', { skip }, () => {
  let session: BrowserSession;
  let site: { dir: string; remove(): void };
  let isolated: TestServer;
  let plain: TestServer;
  let expected: { ref: Float32Array; wasm: Float32Array };
  let weightsName: string;

  before(async () => {
    site = tempDir('resnet-ts-page-');
    const pages = join(repoRoot, 'dist', 'test', 'browser', 'pages');
    await bundle({ page: join(pages, 'model-page.js'), worker: join(pages, 'model-worker.js') }, site.dir);
    writeFileSync(join(site.dir, 'index.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="./page.js"></script>\n');
    // The model's weights as a file, named as torchvision names its files: <name>-<sha256 prefix>.<ext>.
    const weights = writeSafetensors(filledModel(() => resnet18({ numClasses: CLASSES })).stateDict());
    weightsName = `seeded-${createHash('sha256').update(weights).digest('hex').slice(0, 8)}.safetensors`;
    writeFileSync(join(site.dir, weightsName), weights);
    writeFileSync(join(site.dir, 'seeded-00000000.safetensors'), weights); // a name whose hash prefix is wrong
    for (const image of ['coffee_rgb_150x100.png', 'camera_gray_150x200.png', 'chelsea_451x300.jpg', 'coffee_444_240x160.jpg']) {
      writeFileSync(join(site.dir, image), readFileSync(fixturePath('preprocess', 'images', image)));
    }
    expected = nodeLogits();
    isolated = await serve(site.dir, { isolated: true });
    plain = await serve(site.dir, { isolated: false });
    session = await launchChromium();
  });

  after(async () => {
    await session?.close();
    await isolated?.close();
    await plain?.close();
    site?.remove();
  });

  test("an esbuild bundle, cross-origin isolated: 2 threads, Node's logits, no warning", async () => {
    const { page, console: messages, errors } = await openPage(session, `${isolated.base}/`);
    const run = await page.evaluate(([shape, classes]) => (globalThis as any).runSeeded(shape, classes, 2), [SHAPE, CLASSES] as const);
    await page.close();
    assert.deepEqual(errors, []);
    assert.equal(run.isolated, true);
    assert.equal(run.threads, 2);
    assert.ok(run.workerSlices > 0, 'the worker thread ran slices');
    assertLogitsClose(run.logits, expected.wasm, "page (2 threads) vs Node's wasm backend");
    assertLogitsClose(run.logits, expected.ref, "page (2 threads) vs Node's reference backend");
    assert.deepEqual(messages.filter((m) => m.type === 'warning'), []);
  });

  test('not cross-origin isolated: 1 thread, the same logits, and exactly one warning that says why', async () => {
    const { page, console: messages, errors } = await openPage(session, `${plain.base}/`);
    const run = await page.evaluate(([shape, classes]) => (globalThis as any).runSeeded(shape, classes, 2), [SHAPE, CLASSES] as const);
    // A second backend on the same page does not warn again.
    await page.evaluate(([shape, classes]) => (globalThis as any).runSeeded(shape, classes, 2), [SHAPE, CLASSES] as const);
    await page.close();
    assert.deepEqual(errors, []);
    assert.equal(run.isolated, false);
    assert.equal(run.threads, 1);
    assertLogitsClose(run.logits, expected.wasm, "page (1 thread) vs Node's wasm backend");
    const warnings = messages.filter((m) => m.type === 'warning');
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0].text, /not cross-origin isolated/);
    assert.match(warnings[0].text, /Cross-Origin-Opener-Policy: same-origin/);
    assert.match(warnings[0].text, /Cross-Origin-Embedder-Policy: require-corp/);
  });

  test("'auto' on a page picks the wasm backend, started synchronously", async () => {
    const { page } = await openPage(session, `${isolated.base}/`);
    assert.equal(await page.evaluate(() => (globalThis as any).autoBackend()), 'wasm');
    await page.close();
  });

  test("ModelWorker runs the model in a Web Worker: Node's logits, and the page's timers keep running", async () => {
    const { page, errors } = await openPage(session, `${isolated.base}/`);
    const run = await page.evaluate(
      ([shape, classes, url, image]) => (globalThis as any).runInWorker(shape, classes, url, 2, image),
      [SHAPE, CLASSES, `./${weightsName}`, './coffee_rgb_150x100.png'] as const,
    );
    const broken = await page.evaluate(() => (globalThis as any).brokenWorker());
    await page.close();
    assert.deepEqual(errors, []);
    assert.equal(run.backend, 'wasm');
    assert.equal(run.threads, 2);
    assert.ok(run.mainThreadFree, "the page's timer fired while the worker computed");
    assertLogitsClose(run.logits, expected.wasm, "worker vs Node's wasm backend");
    // classify(): the PNG preprocessed in the worker is Node's tensor, and its logits are Node's.
    const pixels = await decodeImage(readFileSync(fixturePath('preprocess', 'images', 'coffee_rgb_150x100.png')));
    const x = new ImageClassification({ resizeSize: 80, cropSize: 64 }).forward(pixels);
    assert.deepEqual(run.classifiedInput, [...x.f32]);
    const model = filledModel(() => resnet18({ numClasses: CLASSES })).eval();
    assertLogitsClose(run.classifiedLogits, withBackend('ref', () => model.forward(x)).f32, "classify in the worker vs Node's reference backend");
    assert.match(broken, /model worker failed to start/);
  });

  test("a PNG preprocessed in the page (Blob, ImageBitmap, <img>) is Node's tensor; a JPEG's pixels are within 2/255", async () => {
    const { page } = await openPage(session, `${plain.base}/`);
    for (const [image, exact] of [['coffee_rgb_150x100.png', true], ['camera_gray_150x200.png', true], ['chelsea_451x300.jpg', false], ['coffee_444_240x160.jpg', false]] as const) {
      const preprocess = new ImageClassification({ resizeSize: 80, cropSize: 64 });
      const pixels = await decodeImage(readFileSync(fixturePath('preprocess', 'images', image)));
      const tensor = preprocess.forward(pixels);
      const crop = preprocess.resizeAndCrop(pixels);
      const got = await page.evaluate(([url]) => (globalThis as any).preprocessFile(url, 80, 64), [`./${image}`] as const);
      if (exact) {
        assert.deepEqual(got.blob, [...tensor.f32], `${image} from a Blob`);
        assert.deepEqual(got.bitmap, [...tensor.f32], `${image} from an ImageBitmap`);
        assert.deepEqual(got.image, [...tensor.f32], `${image} from an <img>`);
      } else {
        const worst = Math.max(...got.crop.map((v: number, i: number) => Math.abs(v - crop.data[i])));
        assert.ok(worst <= 2, `${image}: the page's 8-bit crop differs from Node's by ${worst}/255`);
        assert.equal(got.blob.length, tensor.size);
      }
    }
    await page.close();
  });

  test('weights by URL: checked against the SHA-256 prefix, with progress, kept in the Cache Storage for the next visit', async () => {
    const server = isolated;
    const url = `${server.base}/${weightsName}`;
    const downloads = (): number => server.requests.filter((p) => p === `/${weightsName}`).length;
    const before = downloads();
    let { page } = await openPage(session, `${server.base}/`);
    const first = await page.evaluate((u) => (globalThis as any).loadWeightsByUrl(u), url);
    assert.ok(!('error' in first), JSON.stringify(first));
    const stateDict = filledModel(() => resnet18({ numClasses: CLASSES })).stateDict();
    assert.equal(first.keys, stateDict.size);
    assert.deepEqual(first.sample, [...stateDict.get('conv1.weight')!.f32.subarray(0, 8)]);
    assert.ok(first.progressCalls >= 2 && first.lastLoaded === readFileSync(join(site.dir, weightsName)).length);
    assert.equal(downloads(), before + 1);
    await page.close();
    // The next visit: from the Cache Storage, no request.
    ({ page } = await openPage(session, `${server.base}/`));
    const second = await page.evaluate((u) => (globalThis as any).loadWeightsByUrl(u), url);
    assert.deepEqual(second.sample, first.sample);
    assert.equal(downloads(), before + 1, 'the second visit did not download again');
    const wrong = await page.evaluate((u) => (globalThis as any).loadWeightsByUrl(u), `${server.base}/seeded-00000000.safetensors`);
    await page.close();
    assert.equal(wrong.name, 'DownloadError');
    assert.match(wrong.error, /invalid hash value/);
  });
});

// Keeps Tensor in the import list used (the page's values come back as plain arrays).
void Tensor;
