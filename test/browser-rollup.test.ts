// resnet-ts in a Rollup app: `npm pack` of this repository installed into the same minimal app as
// the Vite and webpack tests (test/fixtures/web-app: 'resnet-ts' imported by its package name, a
// ResNet-18 on the wasm backend on the page and in a module Web Worker made with the literal
// `new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })`), bundled by Rollup 4
// with the one plugin every Rollup app that imports packages has, @rollup/plugin-node-resolve
// (its `browser` option picks the package's browser entry). Rollup bundles no workers itself, so
// the app names its worker as a second entry, as Rollup's users do; the page and the worker are
// then `dist/main.js` and `dist/worker.js`, where the literal URL points. In Chromium, cross-origin
// isolated, the page and the worker must give Node's logits on 2 threads, with no Rollup warning.
// Skips where /usr/bin/chromium is missing.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rollup, type RollupLog } from 'rollup';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import { browserSkipReason } from './helpers/browser.js';
import { assertBuildGivesNodeLogits, useBundlerApp } from './helpers/browser-app.js';

const skip = browserSkipReason();

describe('a Rollup app that imports resnet-ts by name', { skip }, () => {
  const app = useBundlerApp('resnet-ts-rollup-app-', 'dist');

  test("Rollup build (page and worker entries): Node's logits on 2 threads, on the page and in the worker", async () => {
    const outDir = join(app.dir, 'dist');
    const warnings: RollupLog[] = [];
    const build = await rollup({
      input: { main: join(app.dir, 'main.js'), worker: join(app.dir, 'worker.js') },
      plugins: [nodeResolve({ browser: true, rootDir: app.dir })],
      onwarn: (warning) => warnings.push(warning),
    });
    await build.write({ dir: outDir, format: 'es', entryFileNames: '[name].js' });
    await build.close();
    assert.deepEqual(warnings.map((w) => `${w.code}: ${w.message}`), [], 'Rollup warnings');
    writeFileSync(join(outDir, 'index.html'), '<!doctype html>\n<meta charset="utf-8">\n<title>resnet-ts in a Rollup app</title>\n<script type="module" src="./main.js"></script>\n');
    await assertBuildGivesNodeLogits(app, outDir, 'Rollup build');
  });
});
