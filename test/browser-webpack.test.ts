// resnet-ts in a webpack 5 app: `npm pack` of this repository installed into the same minimal app
// as the Vite test (test/fixtures/web-app: 'resnet-ts' imported by its package name, a ResNet-18
// on the wasm backend on the page and in a Web Worker made with the literal
// `new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })`), built by webpack's
// Node API in production mode with no configuration beyond the entry and the output folder. The
// page, in Chromium and cross-origin isolated, must give Node's logits on 2 threads, on the page
// and in the worker. Skips where /usr/bin/chromium is missing.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import webpack from 'webpack';
import { browserSkipReason } from './helpers/browser.js';
import { assertBuildGivesNodeLogits, useBundlerApp } from './helpers/browser-app.js';

const skip = browserSkipReason();

/** webpack(config), as a promise of its stats; rejects with webpack's errors. */
function bundle(config: webpack.Configuration): Promise<webpack.Stats> {
  return new Promise((resolve, reject) => {
    webpack(config, (error, stats) => {
      if (error) return reject(error);
      if (!stats || stats.hasErrors()) return reject(new Error(stats?.toString({ all: false, errors: true }) ?? 'webpack: no stats'));
      resolve(stats);
    });
  });
}

describe('a webpack app that imports resnet-ts by name', { skip }, () => {
  const app = useBundlerApp('resnet-ts-webpack-app-', 'dist');

  test("webpack production build: the page and a Web Worker give Node's logits on 2 threads", async () => {
    const outDir = join(app.dir, 'dist');
    const stats = await bundle({
      mode: 'production', context: app.dir, entry: './main.js', output: { path: outDir, filename: 'main.js' },
      performance: { hints: false }, // the embedded .wasm makes a large bundle, on purpose
    });
    assert.deepEqual(stats.compilation.warnings.map((w) => w.message), [], 'webpack warnings');
    // The page webpack's bundle needs: a classic script (webpack's default output).
    writeFileSync(join(outDir, 'index.html'), '<!doctype html>\n<meta charset="utf-8">\n<title>resnet-ts in a webpack app</title>\n<script src="./main.js"></script>\n');
    await assertBuildGivesNodeLogits(app, outDir, 'webpack build');
  });
});
