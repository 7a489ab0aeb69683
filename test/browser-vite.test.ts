// resnet-ts as a web developer gets it: `npm pack` of this repository installed into a minimal
// Vite app (test/fixtures/web-app) that imports 'resnet-ts' by its package name, with no
// configuration. Its production build (Vite's JS API) and Vite's dev server each run a
// ResNet-18 on the wasm backend on the page and in a Web Worker (ModelWorker), in Chromium, on a
// cross-origin isolated page, and must give Node's logits (<= 1e-5 of the largest: the same
// .wasm). Skips where /usr/bin/chromium is missing.

import { describe, test } from 'node:test';
import { join } from 'node:path';
import { build, createServer, type ViteDevServer } from 'vite';
import { browserSkipReason } from './helpers/browser.js';
import { assertBuildGivesNodeLogits, assertNodeLogitsAt, useBundlerApp } from './helpers/browser-app.js';

const skip = browserSkipReason();
const ISOLATION_HEADERS = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

describe('a Vite app that imports resnet-ts by name', { skip }, () => {
  const app = useBundlerApp('resnet-ts-vite-app-', 'public');

  test("vite build: the page and a Web Worker give Node's logits on 2 threads", async () => {
    const outDir = join(app.dir, 'dist');
    await build({ root: app.dir, configFile: false, logLevel: 'error', build: { outDir } });
    await assertBuildGivesNodeLogits(app, outDir, 'Vite build');
  });

  test("the Vite dev server: the page and a Web Worker give Node's logits", async () => {
    let server: ViteDevServer | undefined;
    try {
      server = await createServer({
        root: app.dir, configFile: false, logLevel: 'error', clearScreen: false,
        server: { host: '127.0.0.1', port: 0, headers: ISOLATION_HEADERS, hmr: false },
      });
      await server.listen();
      await assertNodeLogitsAt(app, server.resolvedUrls!.local[0], 'Vite dev server');
    } finally {
      await server?.close();
    }
  });
});
