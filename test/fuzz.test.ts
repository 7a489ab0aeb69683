// The reader fuzz in short (fuzz/campaign.ts; `npm run fuzz` runs 100,000 inputs): 5,000
// seeded mutants of the committed fixtures through every reader, each in a child process under a
// time and memory limit, must end in a result or the reader's typed error; and every input the
// fuzz ever found (test/fixtures/fuzz, with the seed and index that made each) is replayed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runCampaign, type CampaignReport } from '../fuzz/campaign.js';
import type { ReaderName } from '../fuzz/mutants.js';
import type { WorkerResult } from '../fuzz/worker.js';
import { fixturePath } from './helpers/paths.js';

function describeFindings(report: CampaignReport): string {
  return report.findings.map((f) => `${f.kind} ${f.reader} ${f.path ?? `seed ${f.seed} index ${f.index}`}: ${f.detail}`).join('\n');
}

test('5,000 seeded mutants: no crash, hang, memory blow-up or untyped error', async () => {
  const report = await runCampaign({ seed: 20_261_129, count: 5000, workers: 2, timeLimitMs: 2000, memoryLimitMiB: 256 });
  assert.equal(report.done, 5000);
  assert.deepEqual(report.findings, [], describeFindings(report));
  for (const [reader, counts] of Object.entries(report.byReader)) {
    assert.ok(counts.ok + counts.typed > 100, `${reader}: only ${counts.ok + counts.typed} inputs`);
    assert.ok(counts.ok > 0 && counts.typed > 0, `${reader}: mutants should both load and fail (${JSON.stringify(counts)})`);
  }
});

test('every input the fuzz found ends in a typed error, quickly', async () => {
  const manifest = JSON.parse(readFileSync(fixturePath('fuzz', 'manifest.json'), 'utf8')) as {
    findings: { file: string; reader: ReaderName; seed: number; index: number }[];
  };
  const results = new Map<string, WorkerResult>();
  const files = manifest.findings.map(({ file, reader }) => ({ path: fixturePath('fuzz', file), reader }));
  const report = await runCampaign({ files, workers: 1, timeLimitMs: 2000, onResult: (label, result) => results.set(label, result) });
  assert.deepEqual(report.findings, [], describeFindings(report));
  for (const { path } of files) {
    const result = results.get(path)!;
    assert.equal(result.outcome, 'typed', `${path}: ${result.message}`);
    assert.ok(result.ms < 100, `${path}: ${result.ms.toFixed(0)} ms`);
  }
});
