// The benchmark's browser row: resnet-ts's wasm backend and onnxruntime-web in the same
// Chromium page (headless, Debian's /usr/bin/chromium through playwright-core), on the same
// weights as the Node rows, cross-origin isolated so both get their threads. The page runs
// bench/browser_worker.ts, bundled by esbuild (the library's browser build carries its .wasm and
// its thread worker); a local server gives it that bundle, onnxruntime-web's dist/ (loaded as
// shipped) and the models' files. The engines are checked
// against our logits at the check input, then timed in turn, round after round, in slices, as
// bench/run.ts times the Node engines; the report shows medians and ours ÷ onnxruntime-web.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { readSafetensors } from '../src/io/safetensors.js';
import { median } from '../src/tools/bench.js';
import { browserSkipReason, bundle, launchChromium, serve } from '../test/helpers/browser.js';
import type { BrowserEngine, FromBenchWorker, ToBenchWorker } from './browser_worker.js';
import { modelFile, referencePath, relativeDifference } from './engines.js';

export const BROWSER_ENGINES: readonly BrowserEngine[] = ['resnet-ts/wasm', 'onnxruntime-web'];

export interface BrowserOptions {
  repoRoot: string;
  modelsDir: string;
  archs: string[];
  threads: number;
  /** [C, H, W] of one image. */
  input: readonly number[];
  minTimeMs: number;
  maxTimeMs: number;
  rounds: number;
  /** Largest accepted max|engine − ours| / max|ours| at the check input. */
  tolerance: number;
  /** A call into the page that has not answered by then fails its model's rows. */
  timeoutMs: number;
  log: (line: string) => void;
}

export interface BrowserRow {
  engine: BrowserEngine;
  arch: string;
  batch: number;
  error?: string;
  relDiff?: number;
  medianMs?: number;
  minMs?: number;
  iterations?: number;
  /** The median of each round's slice, in round order: the other engine's slice of the same round ran just before or after it. */
  roundMediansMs?: number[];
  details?: Record<string, unknown>;
}

export interface BrowserResult {
  /** Why nothing was run (no Chromium), or null. */
  skipped: string | null;
  /** The browser as it names itself (navigator.userAgent). */
  userAgent?: string;
  rows: BrowserRow[];
}

/** Where the bundle goes, under the repository (served from there): dist/bench/browser-site/bench.js. */
const SITE = ['dist', 'bench', 'browser-site'];

/** The page: a module worker running the bundled bench/browser_worker.js, and one function to talk to it. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>resnet-ts benchmark</title>
<script type="module">
  const worker = new Worker('/${SITE.join('/')}/bench.js', { type: 'module' });
  let waiting = null;
  worker.onmessage = (event) => { const w = waiting; waiting = null; w?.resolve(event.data); };
  worker.onerror = (event) => { const w = waiting; waiting = null; w?.resolve({ type: 'error', message: event.message || 'the benchmark worker did not load' }); };
  window.benchCall = (message) => new Promise((resolve) => { waiting = { resolve }; worker.postMessage(message); });
  window.benchReady = true;
</script>`;

async function call(page: Page, message: ToBenchWorker, timeoutMs: number): Promise<FromBenchWorker> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the page within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  const reply = page.evaluate((m) => (window as unknown as { benchCall(m: unknown): Promise<unknown> }).benchCall(m), message as unknown);
  const answer = (await Promise.race([reply, timeout]).finally(() => clearTimeout(timer))) as FromBenchWorker;
  if (answer.type === 'error') throw new Error(answer.message);
  return answer;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Times both engines on every arch at batch 1 in one Chromium page; rows with an error say why one did not run. */
export async function measureInBrowser(options: BrowserOptions): Promise<BrowserResult> {
  const missing = browserSkipReason();
  if (missing) return { skipped: missing, rows: [] };
  const { repoRoot, modelsDir, threads, rounds, log } = options;
  await bundle({ bench: join(repoRoot, 'dist', 'bench', 'browser_worker.js') }, join(repoRoot, ...SITE));
  const work = mkdtempSync(join(tmpdir(), 'resnet-bench-browser-'));
  const pagePath = join(work, 'index.html');
  writeFileSync(pagePath, PAGE);
  // The models by name, wherever modelsDir is.
  const models: Record<string, string> = {};
  for (const arch of options.archs) for (const kind of ['safetensors', 'onnx']) models[`/models/${arch}.${kind}`] = modelFile(modelsDir, arch, kind);
  const server = await serve(repoRoot, { isolated: true, extra: { '/': pagePath, '/index.html': pagePath, ...models } });
  const browser = await launchChromium();
  const rows: BrowserRow[] = [];
  try {
    for (const arch of options.archs) {
      const archRows: BrowserRow[] = BROWSER_ENGINES.map((engine) => ({ engine, arch, batch: 1 }));
      rows.push(...archRows);
      // A fresh page per model: the previous one's memory and threads go with it.
      const page = await browser.context.newPage();
      try {
        const errors: string[] = [];
        page.on('pageerror', (error) => errors.push(error.message));
        await page.goto(`${server.base}/`);
        await page.waitForFunction(() => (window as unknown as { benchReady?: boolean }).benchReady === true);
        const isolated = await page.evaluate(() => crossOriginIsolated);
        if (!isolated) throw new Error('the page is not cross-origin isolated: no threads');
        const check = readSafetensors(readFileSync(modelFile(modelsDir, arch, 'check.safetensors'))).get('input')!;
        const expected = readSafetensors(readFileSync(referencePath(modelsDir, arch))).get('logits')!.f32;
        log(`browser ${arch}: loading and checking ${BROWSER_ENGINES.join(' and ')} in Chromium`);
        const ready = await call(page, {
          type: 'setup',
          arch,
          threads,
          safetensorsUrl: `/models/${arch}.safetensors`,
          onnxUrl: `/models/${arch}.onnx`,
          ortUrl: '/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs',
          check: { data: check.f32, shape: [...check.shape] },
          shape: [1, ...options.input],
        }, options.timeoutMs);
        if (ready.type !== 'ready') throw new Error(`unexpected answer ${ready.type}`);
        const live: { row: BrowserRow; times: number[]; lastMs: number }[] = [];
        for (const row of archRows) {
          row.relDiff = relativeDifference(ready.logits[row.engine], expected);
          row.details = ready.details[row.engine];
          if (!(row.relDiff < options.tolerance)) {
            row.error = `output differs from ours: max |Δ| / max |logit| = ${row.relDiff.toExponential(2)} ≥ ${options.tolerance}`;
            log(`  FAILED: ${row.engine}: ${row.error}`);
          } else {
            live.push({ row, times: [], lastMs: Infinity });
          }
        }
        const slice = { minTimeMs: options.minTimeMs / rounds, maxTimeMs: options.maxTimeMs / rounds, minIterations: Math.ceil(5 / rounds) };
        for (let round = 0; round < rounds; round++) {
          for (let k = 0; k < live.length; k++) {
            const e = live[(k + round) % live.length];
            log(`browser ${arch} batch 1, round ${round + 1}/${rounds}: ${e.row.engine}`);
            await sleep(100); // the other engine's threads settle
            // Two warm-up runs the first time, then one run (untimed) to bring the weights back into the caches.
            const answer = await call(page, { type: 'slice', engine: e.row.engine, warmup: round === 0 ? 2 : e.lastMs < 500 ? 1 : 0, ...slice }, options.timeoutMs);
            if (answer.type !== 'slice') throw new Error(`unexpected answer ${answer.type}`);
            e.times.push(...answer.timesMs);
            e.lastMs = median(answer.timesMs);
            (e.row.roundMediansMs ??= []).push(e.lastMs);
          }
        }
        for (const e of live) {
          e.row.medianMs = median(e.times);
          e.row.minMs = Math.min(...e.times);
          e.row.iterations = e.times.length;
          log(`  ${e.row.engine} (Chromium): median ${e.row.medianMs.toFixed(1)} ms, min ${e.row.minMs.toFixed(1)} ms over ${e.times.length} runs`);
        }
        if (errors.length) log(`  page errors: ${errors.join('; ')}`);
      } catch (error) {
        const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
        for (const row of archRows) row.error ??= message;
        log(`  FAILED: browser ${arch}: ${message}`);
      } finally {
        await page.close();
      }
    }
    const page = await browser.context.newPage();
    const userAgent = await page.evaluate(() => navigator.userAgent);
    await page.close();
    return { skipped: null, userAgent, rows };
  } finally {
    await browser.close();
    await server.close();
    rmSync(work, { recursive: true, force: true });
  }
}

const fmt = (x: number | undefined, digits: number) => (x === undefined ? '—' : x.toFixed(digits));

/** ours[r] / theirs[r] for every round both timed. */
export function pairedRatios(ours: readonly number[] | undefined, theirs: readonly number[] | undefined): number[] {
  if (!ours || !theirs) return [];
  return ours.slice(0, theirs.length).map((t, r) => t / theirs[r]);
}

/** The report's section for the browser row. */
export function browserSection(result: BrowserResult, threads: number, rounds: number): string[] {
  const L = ['## In the browser (Chromium)', ''];
  if (result.skipped) {
    L.push(`Not run: ${result.skipped}.`, '');
    return L;
  }
  L.push(
    `resnet-ts on its wasm backend and onnxruntime-web (its wasm build, \`env.wasm.numThreads = ${threads}\`) in one headless Chromium page ` +
      `(${result.userAgent ?? 'version unknown'}), cross-origin isolated (COOP/COEP) so that both run ${threads} threads, both in the same module Web Worker ` +
      `(bench/browser_worker.ts, bundled by esbuild), on the same weights as above (safetensors for us, the ONNX export for onnxruntime-web), ` +
      `each checked against our logits at the check input first. Batch 1, taken in turn in ${rounds} rounds as above; median and min over all runs. ` +
      `The ratio table also gives the median (and range) of each round's own ratio: a round's two slices ran back to back, so it is steadier than the ratio of the medians where the machine's speed drifts.`,
    '',
  );
  L.push('| model | engine | median ms | min ms | runs | threads | max rel. diff vs ours |');
  L.push('|:---|:---|---:|---:|---:|---:|---:|');
  for (const r of result.rows) {
    const label = r.engine === 'resnet-ts/wasm' ? `**resnet-ts** (wasm${r.details?.variant ? `, ${r.details.variant}` : ''})` : 'onnxruntime-web';
    const threadsRan = r.engine === 'resnet-ts/wasm' ? r.details?.threads : r.details?.numThreadsAfterInit;
    if (r.error) L.push(`| ${r.arch} | ${label} | not timed: ${r.error.replace(/\|/g, '\\|')} | | | | ${r.relDiff === undefined ? '—' : r.relDiff.toExponential(1)} |`);
    else L.push(`| ${r.arch} | ${label} | ${fmt(r.medianMs, 1)} | ${fmt(r.minMs, 1)} | ${r.iterations} | ${threadsRan ?? '?'} | ${r.relDiff!.toExponential(1)} |`);
  }
  L.push('');
  // The ratio of the two medians, and the median of the rounds' own ratios (each round's two
  // slices ran back to back, so a machine whose speed drifts between rounds moves both alike).
  L.push('| model | resnet-ts ÷ onnxruntime-web (median) | median of the rounds\' ratios (min – max) |', '|:---|---:|---:|');
  for (const arch of [...new Set(result.rows.map((r) => r.arch))]) {
    const ours = result.rows.find((r) => r.arch === arch && r.engine === 'resnet-ts/wasm' && r.medianMs !== undefined);
    const ort = result.rows.find((r) => r.arch === arch && r.engine === 'onnxruntime-web' && r.medianMs !== undefined);
    const paired = pairedRatios(ours?.roundMediansMs, ort?.roundMediansMs);
    const pairedText = paired.length ? `${median(paired).toFixed(2)} (${Math.min(...paired).toFixed(2)} – ${Math.max(...paired).toFixed(2)})` : '—';
    L.push(`| ${arch} | ${ours && ort ? (ours.medianMs! / ort.medianMs!).toFixed(2) : '—'} | ${pairedText} |`);
  }
  L.push('');
  return L;
}
