// The benchmark's browser row end to end with tiny settings (bench/browser.ts): both engines load
// in one Chromium page, agree with our logits at the check input, and are timed in turn; the
// report's section shows both rows and their ratio. Nothing here asserts a speed. The models
// directory is made here as bench/export_onnx.py would make it, from a seeded ResNet-18 and our
// own writers (safetensors, ONNX), so the test needs no Python.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setBackend } from '../../src/backends/index.js';
import { Tensor } from '../../src/core/tensor.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { getModel } from '../../src/models/builders.js';
import { exportOnnx } from '../../src/tools/onnx.js';
import { browserSection, measureInBrowser, pairedRatios } from '../../bench/browser.js';
import { modelFile, referencePath } from '../../bench/engines.js';
import { browserSkipReason } from '../helpers/browser.js';
import { deterministicInput, filledModel } from '../helpers/fill.js';
import { repoRoot } from '../helpers/paths.js';

const skip = browserSkipReason();
const modelsDir = mkdtempSync(join(tmpdir(), 'resnet-bench-browser-test-'));
after(() => rmSync(modelsDir, { recursive: true, force: true }));
/** The bench's own agreement bound (bench/run.ts's TOLERANCE): the engines' kernels differ. */
const TOLERANCE = 1e-3;

test('the browser row checks and times resnet-ts (wasm) and onnxruntime-web in one Chromium page', { skip, timeout: 300_000 }, async () => {
  const model = filledModel(() => getModel('resnet18'));
  model.eval();
  writeFileSync(modelFile(modelsDir, 'resnet18', 'safetensors'), writeSafetensors(model.stateDict()));
  writeFileSync(modelFile(modelsDir, 'resnet18', 'onnx'), exportOnnx(model));
  const input = deterministicInput([2, 3, 224, 224]);
  writeFileSync(modelFile(modelsDir, 'resnet18', 'check.safetensors'), writeSafetensors(new Map([['input', input]])));
  setBackend('wasm');
  const logits = new Tensor(model.call(input).f32.slice(), [2, 1000]);
  setBackend('auto');
  writeFileSync(referencePath(modelsDir, 'resnet18'), writeSafetensors(new Map([['logits', logits]])));

  const lines: string[] = [];
  const result = await measureInBrowser({
    repoRoot, modelsDir, archs: ['resnet18'], threads: 2, input: [3, 224, 224],
    minTimeMs: 1, maxTimeMs: 1, rounds: 1, tolerance: TOLERANCE, timeoutMs: 120_000, log: (line) => lines.push(line),
  });
  assert.equal(result.skipped, null);
  assert.match(result.userAgent ?? '', /Chrome/);
  assert.deepEqual(result.rows.map((r) => r.engine), ['resnet-ts/wasm', 'onnxruntime-web']);
  for (const row of result.rows) {
    assert.equal(row.error, undefined, `${row.engine}: ${row.error}\n${lines.join('\n')}`);
    assert.ok(row.relDiff! < TOLERANCE, `${row.engine} differs from ours by ${row.relDiff}`);
    assert.ok(row.iterations! >= 1 && row.medianMs! > 0);
  }
  assert.equal(result.rows[0].details?.threads, 2, 'our wasm backend ran 2 threads (the page is cross-origin isolated)');
  assert.equal(result.rows[1].details?.numThreadsAfterInit, 2, 'onnxruntime-web kept its 2 threads');

  for (const row of result.rows) assert.equal(row.roundMediansMs?.length, 1, `${row.engine}: one round, one slice median`);
  const section = browserSection(result, 2, 1).join('\n');
  const ratio = (result.rows[0].medianMs! / result.rows[1].medianMs!).toFixed(2);
  const paired = (result.rows[0].roundMediansMs![0] / result.rows[1].roundMediansMs![0]).toFixed(2);
  assert.ok(section.includes(`| resnet18 | ${ratio} | ${paired} (${paired} – ${paired}) |`), section);
});

test('paired ratios: the rounds both engines timed, in order', () => {
  assert.deepEqual(pairedRatios([10, 20, 30], [20, 40]), [0.5, 0.5]);
  assert.deepEqual(pairedRatios(undefined, [1]), []);
  const section = browserSection({ skipped: null, userAgent: 'x', rows: [
    { engine: 'resnet-ts/wasm', arch: 'resnet18', batch: 1, medianMs: 40, minMs: 39, iterations: 4, relDiff: 1e-6, roundMediansMs: [40, 50, 30] },
    { engine: 'onnxruntime-web', arch: 'resnet18', batch: 1, medianMs: 100, minMs: 90, iterations: 3, relDiff: 1e-6, roundMediansMs: [100, 80, 100] },
  ] }, 2, 3).join('\n');
  // Round ratios 0.40, 0.625, 0.30: median 0.40; the ratio of the medians is 0.40 too.
  assert.ok(section.includes('| resnet18 | 0.40 | 0.40 (0.30 – 0.63) |'), section);
});

test('without Chromium the browser row is skipped with the reason', () => {
  const section = browserSection({ skipped: 'no Chromium at /nowhere', rows: [] }, 2, 4).join('\n');
  assert.match(section, /## In the browser \(Chromium\)\n\nNot run: no Chromium at \/nowhere\./);
});
