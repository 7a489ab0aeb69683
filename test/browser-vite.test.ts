// resnet-ts as a web developer gets it: `npm pack` of this repository installed into a minimal
// Vite app (test/fixtures/vite-app) that imports 'resnet-ts' by its package name, with no
// configuration. Its production build (Vite's JS API) and Vite's dev server each run a
// ResNet-18 on the wasm backend on the page and in a Web Worker (ModelWorker), in Chromium, on a
// cross-origin isolated page, and must give Node's logits (<= 1e-5 of the largest: the same
// .wasm). Skips where /usr/bin/chromium is missing.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, createServer, type ViteDevServer } from 'vite';
import { createReferenceBackend, registerBackend, withBackend } from '../src/backends/index.js';
import { resnet18 } from '../src/models/builders.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { deterministicInput, filledModel } from './helpers/fill.js';
import { fixturePath, repoRoot } from './helpers/paths.js';
import { browserSkipReason, launchChromium, serve, tempDir, type BrowserSession } from './helpers/browser.js';

const skip = browserSkipReason();
const LOGIT_TOL = 1e-5;
const ISOLATION_HEADERS = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

interface AppResult {
  page: number[];
  inWorker: number[];
  threads: number;
  error?: string;
}

function assertLogitsClose(actual: readonly number[], expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, what);
  const scale = Math.max(...expected.map(Math.abs));
  const worst = Math.max(...actual.map((v, i) => Math.abs(v - expected[i])));
  assert.ok(worst <= LOGIT_TOL * scale, `${what}: max |Δ| ${worst} > ${LOGIT_TOL} × ${scale}`);
}

/** A Vite app directory with resnet-ts installed from `npm pack`, its fixtures, and the test's data in public/. */
function makeApp(dir: string): void {
  const tarball = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: repoRoot, encoding: 'utf8' }).trim().split('\n').pop()!;
  const installed = join(dir, 'node_modules', 'resnet-ts');
  mkdirSync(installed, { recursive: true });
  execFileSync('tar', ['-xzf', join(dir, tarball), '-C', installed, '--strip-components=1']);
  // The one dependency the browser entry reaches, as npm would have installed it next to the package.
  symlinkSync(join(repoRoot, 'node_modules', 'fflate'), join(dir, 'node_modules', 'fflate'), 'dir');
  for (const file of readdirSync(fixturePath('vite-app'))) copyFileSync(fixturePath('vite-app', file), join(dir, file));
  mkdirSync(join(dir, 'public'));
  writeFileSync(join(dir, 'public', 'seeded.safetensors'), writeSafetensors(filledModel(() => resnet18({ numClasses: 10 })).stateDict()));
  const input = deterministicInput([1, 3, 64, 64]).f32;
  writeFileSync(join(dir, 'public', 'input.bin'), new Uint8Array(input.buffer, input.byteOffset, input.byteLength));
}

async function runApp(session: BrowserSession, url: string): Promise<AppResult> {
  const page = await session.context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  try {
    await page.goto(url);
    await page.waitForFunction(() => (globalThis as { pageReady?: boolean }).pageReady === true, undefined, { timeout: 60_000 });
    const result = (await page.evaluate(() => (globalThis as { result?: Promise<AppResult> }).result)) as AppResult;
    assert.deepEqual(errors, []);
    assert.equal(result.error, undefined, result.error);
    return result;
  } finally {
    await page.close();
  }
}

describe('a Vite app that imports resnet-ts by name', { skip }, () => {
  let session: BrowserSession;
  let app: { dir: string; remove(): void };
  let expected: Float32Array;

  before(async () => {
    app = tempDir('resnet-ts-vite-app-');
    makeApp(app.dir);
    const model = filledModel(() => resnet18({ numClasses: 10 })).eval();
    registerBackend('test-ref', createReferenceBackend);
    expected = withBackend('test-ref', () => model.forward(deterministicInput([1, 3, 64, 64]))).f32.slice();
    session = await launchChromium();
  });

  after(async () => {
    await session?.close();
    app?.remove();
  });

  test("vite build: the page and a Web Worker give Node's logits on 2 threads", async () => {
    const outDir = join(app.dir, 'dist');
    await build({ root: app.dir, configFile: false, logLevel: 'error', build: { outDir } });
    const server = await serve(outDir, { isolated: true });
    try {
      const result = await runApp(session, `${server.base}/`);
      assert.equal(result.threads, 2);
      assertLogitsClose(result.page, expected, 'Vite build, page');
      assertLogitsClose(result.inWorker, expected, 'Vite build, worker');
    } finally {
      await server.close();
    }
  });

  test("the Vite dev server: the page and a Web Worker give Node's logits", async () => {
    let server: ViteDevServer | undefined;
    try {
      server = await createServer({
        root: app.dir, configFile: false, logLevel: 'error', clearScreen: false,
        server: { host: '127.0.0.1', port: 0, headers: ISOLATION_HEADERS, hmr: false },
      });
      await server.listen();
      const url = server.resolvedUrls!.local[0];
      const result = await runApp(session, url);
      assert.equal(result.threads, 2);
      assertLogitsClose(result.page, expected, 'Vite dev server, page');
      assertLogitsClose(result.inWorker, expected, 'Vite dev server, worker');
    } finally {
      await server?.close();
    }
  });
});
