// A web app as a user writes one, for the bundler tests (browser-vite, browser-webpack, browser-rollup): resnet-ts
// installed from `npm pack` of this repository into a temporary app directory, the app's files
// from test/fixtures/<app>, and the test's data (a seeded ResNet-18's weights and an input) as
// files the page fetches. The app runs the model on the wasm backend, on the page and in a Web
// Worker, and its logits must be Node's (<= 1e-5 of the largest: the same .wasm).

import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createReferenceBackend, registerBackend, withBackend } from '../../src/backends/index.js';
import { resnet18 } from '../../src/models/builders.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { deterministicInput, filledModel } from './fill.js';
import { fixturePath, repoRoot } from './paths.js';
import { launchChromium, serve, tempDir, type BrowserSession } from './browser.js';

export const LOGIT_TOL = 1e-5;
export const INPUT_SHAPE = [1, 3, 64, 64];

export interface AppResult {
  page: number[];
  inWorker: number[];
  threads: number;
  error?: string;
}

export function assertLogitsClose(actual: readonly number[], expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, what);
  const scale = Math.max(...expected.map(Math.abs));
  const worst = Math.max(...actual.map((v, i) => Math.abs(v - expected[i])));
  assert.ok(worst <= LOGIT_TOL * scale, `${what}: max |Δ| ${worst} > ${LOGIT_TOL} × ${scale}`);
}

/**
 * An app directory with resnet-ts installed from `npm pack`, the files of test/fixtures/<fixture>,
 * and seeded.safetensors and input.bin (float32, INPUT_SHAPE) in dataDir (relative to dir).
 */
export function makeApp(dir: string, fixture: string, dataDir: string): void {
  const tarball = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: repoRoot, encoding: 'utf8' }).trim().split('\n').pop()!;
  const installed = join(dir, 'node_modules', 'resnet-ts');
  mkdirSync(installed, { recursive: true });
  execFileSync('tar', ['-xzf', join(dir, tarball), '-C', installed, '--strip-components=1']);
  // The one dependency the browser entry reaches, as npm would have installed it next to the package.
  symlinkSync(join(repoRoot, 'node_modules', 'fflate'), join(dir, 'node_modules', 'fflate'), 'dir');
  for (const file of readdirSync(fixturePath(fixture))) copyFileSync(fixturePath(fixture, file), join(dir, file));
  const data = join(dir, dataDir);
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'seeded.safetensors'), writeSafetensors(filledModel(() => resnet18({ numClasses: 10 })).stateDict()));
  const input = deterministicInput(INPUT_SHAPE).f32;
  writeFileSync(join(data, 'input.bin'), new Uint8Array(input.buffer, input.byteOffset, input.byteLength));
}

/** Node's logits for the app's model and input, on the reference backend. */
export function expectedLogits(): Float32Array {
  const model = filledModel(() => resnet18({ numClasses: 10 })).eval();
  registerBackend('test-ref', createReferenceBackend);
  return withBackend('test-ref', () => model.forward(deterministicInput(INPUT_SHAPE))).f32.slice();
}

/** Opens url, waits for the app's result, and checks that the page raised no error. */
export async function runApp(session: BrowserSession, url: string): Promise<AppResult> {
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

/** One bundler test's app (test/fixtures/web-app in a temporary directory), Node's logits for it, and a Chromium session. */
export interface BundlerApp {
  dir: string;
  expected: Float32Array;
  session: BrowserSession;
}

/**
 * Registers the describe block's set-up and clean-up of a bundler test: the app installed from
 * `npm pack` with its data files in `dataDir`, Node's logits, Chromium. The fields are filled
 * by the time the tests run.
 */
export function useBundlerApp(prefix: string, dataDir: string): BundlerApp {
  const app = {} as BundlerApp;
  let temp: { dir: string; remove(): void } | undefined;
  before(async () => {
    temp = tempDir(prefix);
    makeApp(temp.dir, 'web-app', dataDir);
    app.dir = temp.dir;
    app.expected = expectedLogits();
    app.session = await launchChromium();
  });
  after(async () => {
    await app.session?.close();
    temp?.remove();
  });
  return app;
}

/** The app at url runs on 2 threads and gives Node's logits on the page and in its Web Worker. */
export async function assertNodeLogitsAt(app: BundlerApp, url: string, what: string): Promise<void> {
  const result = await runApp(app.session, url);
  assert.equal(result.threads, 2);
  assertLogitsClose(result.page, app.expected, `${what}, page`);
  assertLogitsClose(result.inWorker, app.expected, `${what}, worker`);
}

/** The same for a built app: outDir served cross-origin isolated. */
export async function assertBuildGivesNodeLogits(app: BundlerApp, outDir: string, what: string): Promise<void> {
  const server = await serve(outDir, { isolated: true });
  try {
    await assertNodeLogitsAt(app, `${server.base}/`, what);
  } finally {
    await server.close();
  }
}
