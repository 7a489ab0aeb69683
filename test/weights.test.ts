// Pretrained weights without the internet: torchvision's descriptors as generated from
// torchvision 0.14 (src/weights/make_descriptors.py), and downloads from a local HTTP server
// that serves real torch.save files (test/fixtures/blocks, test/fixtures/formats) under names
// carrying their SHA-256 prefix, and misbehaves on purpose: dropped connections, 5xx, a wrong
// hash, Range ignored.

import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DownloadError,
  IMAGENET_CATEGORIES,
  IMAGENET_WEIGHTS,
  ResNet,
  TORCHVISION_VERSION,
  fileNameOf,
  getModel,
  getModelWeights,
  listModels,
  loadWeightsFile,
  manualSeed,
  resnet18,
  sha256PrefixOf,
  writeSafetensors,
  type WeightsDescriptor,
} from '../src/index.js';
import { downloadToCache, loadStateDictFromUrl } from '../src/weights/load.js';
import { checkpointDir, resnetHome } from '../src/platform/node-download.js';
import { summarize } from '../src/tools/summary.js';
import { getDefaultGenerator } from '../src/core/rng.js';
import { fixturePath } from './helpers/paths.js';

describe('torchvision descriptors (generated from torchvision 0.14)', () => {
  const all = Object.entries(IMAGENET_WEIGHTS).flatMap(([arch, table]) =>
    Object.entries(table as Record<string, WeightsDescriptor>).map(([name, d]) => ({ arch, name, d })));

  test('one table per builder: IMAGENET1K_V1 for all ten, V2 for seven, DEFAULT the best', () => {
    assert.deepEqual(Object.keys(IMAGENET_WEIGHTS), listModels('imagenet'));
    assert.ok(TORCHVISION_VERSION.startsWith('0.14'));
    const withV2 = listModels('imagenet').filter((arch) => 'IMAGENET1K_V2' in getModelWeights(arch));
    assert.deepEqual(withV2, [
      'resnet50', 'resnet101', 'resnet152', 'resnext50_32x4d', 'resnext101_32x8d', 'wide_resnet50_2', 'wide_resnet101_2',
    ]);
    for (const arch of listModels('imagenet')) {
      const table = getModelWeights(arch);
      assert.equal(table.DEFAULT, table.IMAGENET1K_V2 ?? table.IMAGENET1K_V1, `${arch} DEFAULT`);
    }
    assert.equal(new Set(all.map(({ d }) => d)).size, 17);
    assert.deepEqual(getModelWeights('resnet19'), {});
  });

  test('known values: resnet50 V2, the categories', () => {
    const d = IMAGENET_WEIGHTS.resnet50.IMAGENET1K_V2;
    assert.equal(d.url, 'https://download.pytorch.org/models/resnet50-11ad3fa6.pth');
    assert.equal(d.fileName, 'resnet50-11ad3fa6.pth');
    assert.equal(d.sha256Prefix, '11ad3fa6');
    assert.equal(d.meta.metrics['ImageNet-1K']['acc@1'], 80.858);
    assert.equal(d.meta.metrics['ImageNet-1K']['acc@5'], 95.434);
    assert.equal(d.meta.numParams, 25557032);
    assert.equal(d.meta.gflops, 4.089);
    assert.equal(IMAGENET_WEIGHTS.resnet18.IMAGENET1K_V1.meta.metrics['ImageNet-1K']['acc@1'], 69.758);
    assert.equal(IMAGENET_CATEGORIES.length, 1000);
    assert.equal(IMAGENET_CATEGORIES[0], 'tench');
    assert.equal(IMAGENET_CATEGORIES[999], 'toilet tissue');
    assert.ok(Object.isFrozen(IMAGENET_CATEGORIES));
  });

  test('every descriptor is consistent: file name, hash prefix, categories, preprocessing', () => {
    for (const { arch, name, d } of all) {
      const what = `${arch}.${name}`;
      assert.equal(d.arch, arch, what);
      if (name !== 'DEFAULT') assert.equal(d.name, name, what);
      assert.equal(d.fileName, fileNameOf(d.url), what);
      assert.ok(d.fileName!.startsWith(`${arch}-`), what);
      assert.match(d.sha256Prefix!, /^[0-9a-f]{8}$/, what);
      assert.equal(d.sha256Prefix, sha256PrefixOf(d.fileName!), what);
      assert.equal(d.meta.categories, IMAGENET_CATEGORIES, what);
      // torchvision's new recipe (V2, and resnext101_64x4d's only weights) evaluates at 232.
      const newRecipe = d.name === 'IMAGENET1K_V2' || arch === 'resnext101_64x4d';
      assert.deepEqual(d.transforms, {
        resizeSize: newRecipe ? 232 : 256,
        cropSize: 224,
        interpolation: 'bilinear',
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
      }, what);
      assert.equal(d.meta.numParams, getModelWeights(arch).IMAGENET1K_V1.meta.numParams, what);
    }
  });

  test('numParams matches our models; gflops is our MAC count', () => {
    for (const arch of ['resnet18', 'resnet50'] as const) {
      const summary = summarize(getModel(arch), [1, 3, 224, 224]);
      for (const d of Object.values(IMAGENET_WEIGHTS[arch])) {
        assert.equal(d.meta.numParams, summary.totalParams, arch);
        assert.equal(d.meta.gflops, Math.round(summary.totalMacs / 1e6) / 1e3, arch);
      }
    }
  });
});

/** A request the server saw: the path and the Range header. */
interface Seen {
  path: string;
  range: string | undefined;
}

/** How the server answers one request to a path; the last plan repeats. */
interface Plan {
  status?: number;
  /** Send this many bytes of the body, then close the connection. */
  cutAfter?: number;
  ignoreRange?: boolean;
}

class TestServer {
  readonly seen: Seen[] = [];
  private readonly files = new Map<string, { body: Uint8Array; plans: Plan[] }>();
  private server!: Server;
  base = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** Serves `body` at `path` with the given plans; returns the URL. */
  serve(path: string, body: Uint8Array, ...plans: Plan[]): string {
    this.files.set(path, { body, plans: plans.length ? plans : [{}] });
    return this.base + path;
  }

  requests(path: string): Seen[] {
    return this.seen.filter((s) => s.path === path);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '';
    this.seen.push({ path, range: req.headers.range });
    const file = this.files.get(path);
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    const plan = file.plans.length > 1 ? file.plans.shift()! : file.plans[0];
    if (plan.status) {
      res.writeHead(plan.status).end('failed on purpose');
      return;
    }
    const { body } = file;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (range && !plan.ignoreRange) {
      start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`, 'Content-Length': body.length - start });
    } else {
      res.writeHead(200, { 'Content-Length': body.length });
    }
    if (plan.cutAfter === undefined) {
      res.end(body.subarray(start));
    } else {
      // Close a moment after the bytes are sent: fetch drops what it has not yet handed over
      // when the connection fails, and the test wants to see exactly where the resume starts.
      res.write(body.subarray(start, start + plan.cutAfter), () => setTimeout(() => res.socket?.destroy(), 50));
    }
  }
}

/** A fixture's bytes and its name with the SHA-256 prefix torch.hub checks, e.g. basic_stride2_zip-1a2b3c4d.pth. */
function hashedFixture(dir: string, name: string): { body: Uint8Array; fileName: string; sha256: string } {
  const body = new Uint8Array(readFileSync(fixturePath(dir, name)));
  const sha256 = createHash('sha256').update(body).digest('hex');
  return { body, fileName: name.replace(/\.pth$/, `-${sha256.slice(0, 8)}.pth`), sha256 };
}

const FAST = { progress: false, retryDelayMs: 1 } as const;

describe('downloads (local server)', () => {
  const server = new TestServer();
  const zip = hashedFixture('blocks', 'basic_stride2_zip.pth');
  const legacy = hashedFixture('formats', 'model_legacy.pth');
  let modelDir = '';

  before(() => server.start());
  after(() => server.stop());
  beforeEach(async () => {
    modelDir = await mkdtemp(join(tmpdir(), 'resnet-ts-weights-'));
  });
  afterEach(() => rm(modelDir, { recursive: true, force: true }));

  const cached = (fileName: string) => join(modelDir, fileName);
  const cacheContents = () => readdir(modelDir);

  test('downloads into the cache, checks the hash, and the second call makes no request', async () => {
    const path = `/a/${zip.fileName}`;
    const url = server.serve(path, zip.body);
    const file = await downloadToCache(url, { ...FAST, modelDir });
    assert.equal(file, cached(zip.fileName));
    assert.deepEqual(new Uint8Array(await readFile(file)), zip.body);
    assert.deepEqual(await cacheContents(), [zip.fileName]);
    assert.equal(server.requests(path).length, 1);

    const stateDict = await loadStateDictFromUrl(url, { ...FAST, modelDir });
    assert.equal(server.requests(path).length, 1, 'cache hit: no request');
    const expected = await loadWeightsFile(fixturePath('blocks', 'basic_stride2_zip.pth'));
    assert.deepEqual([...stateDict.keys()], [...expected.keys()]);
    assert.deepEqual(stateDict.get('conv1.weight')!.data, expected.get('conv1.weight')!.data);
  });

  test('a connection closed mid-transfer resumes with a Range request', async () => {
    const path = `/b/${zip.fileName}`;
    const url = server.serve(path, zip.body, { cutAfter: 5000 }, {});
    await downloadToCache(url, { ...FAST, modelDir });
    assert.deepEqual(server.requests(path).map((s) => s.range), [undefined, 'bytes=5000-']);
    assert.deepEqual(new Uint8Array(await readFile(cached(zip.fileName))), zip.body);
    assert.deepEqual(await cacheContents(), [zip.fileName]);
  });

  test('a 500 is retried', async () => {
    const path = `/c/${legacy.fileName}`;
    const url = server.serve(path, legacy.body, { status: 500 }, {});
    const stateDict = await loadStateDictFromUrl(url, { ...FAST, modelDir });
    assert.equal(server.requests(path).length, 2);
    const expected = await loadWeightsFile(fixturePath('formats', 'model_legacy.pth'));
    assert.deepEqual([...stateDict.keys()], [...expected.keys()]);
  });

  test('a server that ignores Range sends the whole file again, and it is written from byte 0', async () => {
    const path = `/d/${zip.fileName}`;
    const url = server.serve(path, zip.body, { cutAfter: 7000 }, { ignoreRange: true });
    await downloadToCache(url, { ...FAST, modelDir });
    assert.deepEqual(server.requests(path).map((s) => s.range), [undefined, 'bytes=7000-']);
    assert.deepEqual(new Uint8Array(await readFile(cached(zip.fileName))), zip.body);
  });

  test('a hash mismatch deletes the download and says so', async () => {
    const wrongName = zip.fileName.replace(zip.sha256.slice(0, 8), zip.sha256[0] === '0' ? '12345678' : '01234567');
    const url = server.serve(`/e/${wrongName}`, zip.body);
    await assert.rejects(downloadToCache(url, { ...FAST, modelDir }), (error: unknown) => {
      assert.ok(error instanceof DownloadError);
      assert.match(error.message, new RegExp(`invalid hash value .*expected "${wrongName.split('-').pop()!.slice(0, 8)}", got "${zip.sha256}"`));
      return true;
    });
    assert.deepEqual(await cacheContents(), [], 'neither the file nor a .partial is left');
  });

  test('giving up leaves only <file>.partial, which the next call resumes', async () => {
    const path = `/f/${zip.fileName}`;
    const url = server.serve(path, zip.body, { cutAfter: 3000 }, { status: 503 }, { status: 503 }, {});
    await assert.rejects(downloadToCache(url, { ...FAST, modelDir, retries: 1 }), (error: unknown) => {
      assert.ok(error instanceof DownloadError && error.retryable && error.status === 503, String(error));
      return true;
    });
    assert.deepEqual(await cacheContents(), [`${zip.fileName}.partial`]);
    assert.equal((await readFile(cached(`${zip.fileName}.partial`))).length, 3000);

    await downloadToCache(url, { ...FAST, modelDir }); // a 503, then the rest
    assert.deepEqual(server.requests(path).map((s) => s.range), [undefined, 'bytes=3000-', 'bytes=3000-', 'bytes=3000-']);
    assert.deepEqual(new Uint8Array(await readFile(cached(zip.fileName))), zip.body);
    assert.deepEqual(await cacheContents(), [zip.fileName]);
  });

  test('a stale .partial from an earlier run that fails the hash is downloaded again from the start', async () => {
    const path = `/g/${zip.fileName}`;
    const url = server.serve(path, zip.body);
    await writeFile(cached(`${zip.fileName}.partial`), new Uint8Array(100).fill(7));
    await downloadToCache(url, { ...FAST, modelDir });
    assert.deepEqual(server.requests(path).map((s) => s.range), ['bytes=100-', undefined]);
    assert.deepEqual(new Uint8Array(await readFile(cached(zip.fileName))), zip.body);
  });

  test('a complete .partial (416 for the range) is checked and renamed without new data', async () => {
    const path = `/h/${zip.fileName}`;
    const url = server.serve(path, zip.body);
    await writeFile(cached(`${zip.fileName}.partial`), zip.body);
    await downloadToCache(url, { ...FAST, modelDir });
    assert.deepEqual(server.requests(path).map((s) => s.range), [`bytes=${zip.body.length}-`]);
    assert.deepEqual(await cacheContents(), [zip.fileName]);
  });

  test('a 404 is not retried; a refused connection is, then fails', async () => {
    const path = `/i/missing-01234567.pth`;
    await assert.rejects(downloadToCache(server.base + path, { ...FAST, modelDir }), (error: unknown) => {
      assert.ok(error instanceof DownloadError && !error.retryable && error.status === 404, String(error));
      return true;
    });
    assert.equal(server.requests(path).length, 1);

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(downloadToCache(`http://127.0.0.1:${port}/x-01234567.pth`, { ...FAST, modelDir, retries: 2 }), (error: unknown) => {
      assert.ok(error instanceof DownloadError && error.retryable, String(error));
      assert.match(error.message, /ECONNREFUSED/);
      return true;
    });
    assert.deepEqual(await cacheContents(), []);
  });

  test('without a terminal, progress is a few plain lines on stderr', async () => {
    const url = server.serve(`/j/${zip.fileName}`, zip.body);
    const lines: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => lines.push(chunk) > 0) as typeof process.stderr.write;
    try {
      await downloadToCache(url, { modelDir });
    } finally {
      process.stderr.write = write;
    }
    assert.equal(lines[0], `Downloading: "${url}" to ${cached(zip.fileName)}\n`);
    assert.ok(lines.length <= 5, lines.join(''));
    assert.match(lines.at(-1)!, /: 100% \(/);
  });

  test('the cache directory: RESNET_TS_HOME, else XDG_CACHE_HOME/resnet-ts, else ~/.cache/resnet-ts', () => {
    const saved = { home: process.env.RESNET_TS_HOME, xdg: process.env.XDG_CACHE_HOME };
    try {
      process.env.RESNET_TS_HOME = '/r';
      process.env.XDG_CACHE_HOME = '/x';
      assert.equal(checkpointDir(), join('/r', 'checkpoints'));
      delete process.env.RESNET_TS_HOME;
      assert.equal(resnetHome(), join('/x', 'resnet-ts'));
      delete process.env.XDG_CACHE_HOME;
      assert.ok(resnetHome().endsWith(join('.cache', 'resnet-ts')));
    } finally {
      for (const [name, value] of [['RESNET_TS_HOME', saved.home], ['XDG_CACHE_HOME', saved.xdg]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});

describe('builders with weights', () => {
  const server = new TestServer();
  let home = '';
  let savedHome: string | undefined;
  let source: ResNet;
  let file: { body: Uint8Array; fileName: string } = { body: new Uint8Array(), fileName: '' };

  before(async () => {
    await server.start();
    savedHome = process.env.RESNET_TS_HOME;
    home = await mkdtemp(join(tmpdir(), 'resnet-ts-home-'));
    process.env.RESNET_TS_HOME = home;
    // A whole resnet18 state dict (ours, as safetensors: the fixtures hold no whole model).
    source = resnet18({ seed: 7 });
    const body = writeSafetensors(source.stateDict());
    const sha256 = createHash('sha256').update(body).digest('hex');
    file = { body, fileName: `resnet18-${sha256.slice(0, 8)}.safetensors` };
  });
  after(async () => {
    await server.stop();
    if (savedHome === undefined) delete process.env.RESNET_TS_HOME;
    else process.env.RESNET_TS_HOME = savedHome;
    await rm(home, { recursive: true, force: true });
  });

  function assertSameWeights(model: ResNet): void {
    const expected = source.stateDict();
    for (const [key, tensor] of model.stateDict()) assert.deepEqual(tensor.data, expected.get(key)!.data, key);
  }

  test('a descriptor pointing at the local server: downloaded, checked, cached, loaded', async () => {
    const url = server.serve(`/w/${file.fileName}`, file.body);
    const descriptor: WeightsDescriptor = { ...IMAGENET_WEIGHTS.resnet18.IMAGENET1K_V1, url, fileName: file.fileName, sha256Prefix: sha256PrefixOf(file.fileName) };
    const pending: Promise<ResNet> = resnet18({ weights: descriptor, progress: false });
    const model = await pending;
    assert.equal(model.fc.outFeatures, 1000);
    assertSameWeights(model);
    assert.deepEqual(await readdir(checkpointDir()), [file.fileName]);

    assertSameWeights(await getModel('resnet18', { weights: descriptor, progress: false }));
    assert.equal(server.requests(`/w/${file.fileName}`).length, 1, 'the second build reads the cache');
  });

  test('a URL and a file path', async () => {
    const url = server.serve(`/u/${file.fileName}`, file.body);
    assertSameWeights(await resnet18({ weights: url, progress: false }));
    // From a file: nothing drawn for an initialisation the load would overwrite, and the
    // parameters hold the file's tensors rather than copies of them.
    manualSeed(11);
    const next = getDefaultGenerator().random();
    manualSeed(11);
    const model = await resnet18({ weights: join(checkpointDir(), file.fileName) });
    assert.equal(getDefaultGenerator().random(), next, 'the pretrained builder drew no random numbers');
    assertSameWeights(model);
    const buffers = new Set([...model.stateDict().values()].map((t) => t.data.buffer));
    assert.equal(buffers.size, 1, 'every parameter and buffer is a view of the one file read');
  });

  test("torchvision's errors, as rejections, before anything is downloaded", async () => {
    await assert.rejects(resnet18({ weights: 'IMAGENET1K_V1', numClasses: 10 }), {
      name: 'RangeError',
      message: "The parameter 'num_classes' expected value 1000 but got 10 instead.",
    });
    await assert.rejects(resnet18({ weights: 'IMAGENET1K_V2' }), {
      message: "resnet18 has no weights 'IMAGENET1K_V2'; available: IMAGENET1K_V1, DEFAULT",
    });
    await assert.rejects(getModel('resnet18', { weights: IMAGENET_WEIGHTS.resnet50.DEFAULT }), /are for resnet50, not resnet18/);
    await assert.rejects(getModel('resnext50_32x4d', { weights: 'DEFAULT', groups: 8 }), /'groups' expected value 32/);
    await assert.rejects(resnet18({ weights: join(home, 'no-such-file.pth') }), /file not found/);
  });

  test('without weights a builder still returns a ResNet, not a Promise', () => {
    const model: ResNet = resnet18({ numClasses: 3, weights: null });
    assert.ok(model instanceof ResNet);
    const maybe = undefined as string | undefined;
    const either: ResNet | Promise<ResNet> = getModel('resnet18', { numClasses: 3, weights: maybe });
    assert.ok(either instanceof ResNet);
  });
});
