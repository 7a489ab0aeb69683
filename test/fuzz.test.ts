// The reader fuzz in short (fuzz/campaign.ts; `npm run fuzz` runs 100,000 inputs): 5,000
// seeded mutants of the committed fixtures through every reader, each in a child process under a
// time and memory limit, must end in a result or the reader's typed error; and every input the
// fuzz ever found (test/fixtures/fuzz, with the seed and index that made each) is replayed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
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

/** An 8 MiB file of one byte repeated between a head and a tail. */
function repeated(head: number[], byte: number, tail: number[], size = 8 << 20): Uint8Array {
  const bytes = new Uint8Array(size).fill(byte);
  bytes.set(head, 0);
  bytes.set(tail, size - tail.length);
  return bytes;
}

function safetensorsWithHeader(header: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + header.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  return out;
}

test('8 MiB of the costliest opcodes and brackets: under the time and memory limits', async () => {
  const ascii = (text: string): number[] => [...text].map((c) => c.charCodeAt(0));
  const pickleOf = (opcode: number): Uint8Array => repeated([0x80, 0x02, 0x4e], opcode, [0x2e]);
  const torchZip = (pkl: Uint8Array): Uint8Array => zipSync({ 'archive/data.pkl': pkl }, { level: 0 });
  const inputs: [string, ReaderName, Uint8Array][] = [
    ['empty-dicts.pth', 'torch', torchZip(pickleOf(0x7d))], // EMPTY_DICT: a Map per byte
    ['marks.pth', 'torch', torchZip(pickleOf(0x28))], // MARK: a new stack per byte
    ['dups.pth', 'torch', torchZip(pickleOf(0x32))], // DUP: a stack slot per byte
    ['tuples.pth', 'torch', torchZip(pickleOf(0x85))], // TUPLE1: nested one-tuples
    ['brackets.safetensors', 'safetensors', safetensorsWithHeader(repeated(ascii('{"a":'), 0x5b, ascii('}')))],
    ['digits.safetensors', 'safetensors', safetensorsWithHeader(new TextEncoder().encode(
      `{"a":{"dtype":"F32","shape":[${'0,'.repeat(4 << 20)}0],"data_offsets":[0,0]}}`))], // 4M dimensions
  ];
  const dir = mkdtempSync(join(tmpdir(), 'resnet-fuzz-'));
  try {
    const files = inputs.map(([name, reader, bytes]) => {
      writeFileSync(join(dir, name), bytes);
      return { path: join(dir, name), reader };
    });
    const results = new Map<string, WorkerResult>();
    const report = await runCampaign({ files, workers: 1, timeLimitMs: 2000, memoryLimitMiB: 256, onResult: (label, r) => results.set(label, r) });
    assert.deepEqual(report.findings, [], describeFindings(report));
    for (const { path } of files) assert.equal(results.get(path)!.outcome, 'typed', `${path}: ${results.get(path)!.message}`);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
