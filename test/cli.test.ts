// The `resnet` command as a user runs it: a child process per call, checking stdout, the
// one-line errors on stderr and the exit codes; `run` is checked against torch's logits.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getModel } from '../src/index.js';
import { readNpy, writeNpy } from '../src/io/npy.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { deterministicInput, deterministicStateDict } from './helpers/fill.js';
import { assertCloseToReference } from './helpers/compare.js';
import { fixturePath, repoRoot } from './helpers/paths.js';

const bin = join(repoRoot, 'bin', 'resnet.js');
const work = mkdtempSync(join(tmpdir(), 'resnet-cli-'));

function resnet(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** torch's expected logits for resnet18 at input A, and a formula-filled weights file. */
const INPUT_SHAPE = [2, 3, 64, 64];
const expected = readSafetensors(readFileSync(fixturePath('parity', 'eval_logits.safetensors'))).get('resnet18/2x3x64x64')!;
const weightsPath = join(work, 'resnet18.safetensors');
const inputPath = join(work, 'x.npy');
writeFileSync(
  weightsPath,
  writeSafetensors(deterministicStateDict([...getModel('resnet18').stateDict()].map(([k, t]) => [k, t.shape] as const))),
);
writeFileSync(inputPath, writeNpy(deterministicInput(INPUT_SHAPE)));

test('--help on every command, exit 0', () => {
  for (const args of [['--help'], ['summary', '--help'], ['run', '--help']]) {
    const r = resnet(...args);
    assert.equal(r.status, 0, args.join(' '));
    assert.match(r.stdout, /Usage: resnet/);
    assert.match(r.stdout, /Exit codes/);
  }
});

test('summary prints the per-layer table with torchvision totals', () => {
  const r = resnet('summary', 'resnet50');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /layer4\.2\s+Bottleneck\s+1×1 512 → 3×3 512 → 1×1 2048\s+\[1, 2048, 7, 7\]/);
  assert.match(r.stdout, /Total params: 25,557,032/);
  assert.match(r.stdout, /Total MACs: 4,089,184,256 \(4\.09 GMACs\)/);
});

test('summary --json gives every module with shapes, params and MACs', () => {
  const r = resnet('summary', 'resnet18', '--input', '3x97x131', '--batch', '2', '--json', '--num-classes', '10');
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.arch, 'resnet18');
  assert.deepEqual(s.outputShape, [2, 10]);
  assert.deepEqual(s.layers.find((l: { name: string }) => l.name === 'layer2.0.downsample.0').outputShape, [2, 128, 13, 17]);
  assert.equal(s.totalParams, 11181642);
});

test('run writes the logits that torch computes for the same weights and input', () => {
  const out = join(work, 'y.npy');
  const r = resnet('run', 'resnet18', '--weights', weightsPath, '--input', inputPath, '--output', out, '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).output, [2, 1000]);
  assertCloseToReference(readNpy(readFileSync(out)), expected, 1e-4, 'resnet run resnet18');
});

test('bad arguments exit 2 with a one-line message', () => {
  for (const args of [
    ['summary', 'resnet19'],
    ['summary', 'resnet18', '--input', '3x224'],
    ['summary', 'resnet18', '--batch', '0'],
    ['summary', 'resnet34', '--replace-stride-with-dilation', 'false,true,true'],
    ['summary', 'resnet50', '--replace-stride-with-dilation', 'true,false'],
    ['run', 'resnet18', '--weights', weightsPath],
    ['frobnicate'],
  ]) {
    const r = resnet(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.trim().length > 0, args.join(' '));
  }
});

test('missing, corrupt and hostile weight files exit 3', () => {
  const corrupt = join(work, 'corrupt.pth');
  writeFileSync(corrupt, Buffer.from('PK\x03\x04 this is not really a zip file'));
  for (const weights of [join(work, 'nope.pth'), corrupt, fixturePath('formats', 'hostile_os_system.pth'), fixturePath('formats', 'truncated_zip.pth')]) {
    const r = resnet('run', 'resnet18', '--weights', weights, '--input', inputPath, '--output', join(work, 'o.npy'));
    assert.equal(r.status, 3, `${weights}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  const r = resnet('run', 'resnet18', '--weights', fixturePath('formats', 'hostile_os_system.pth'), '--input', inputPath, '--output', join(work, 'o.npy'));
  assert.match(r.stderr, /os\.system|posix\.system/);
});

test('a state dict that does not fit exits 4 and names the keys', () => {
  const r = resnet('run', 'resnet18', '--num-classes', '10', '--weights', weightsPath, '--input', inputPath, '--output', join(work, 'o.npy'));
  assert.equal(r.status, 4, r.stderr);
  assert.match(r.stderr, /size mismatch for fc\.weight/);
  const wrongArch = resnet('run', 'resnet34', '--weights', weightsPath, '--input', inputPath, '--output', join(work, 'o.npy'));
  assert.equal(wrongArch.status, 4);
  assert.match(wrongArch.stderr, /Missing key\(s\) in state_dict: "layer1\.2\.conv1\.weight"/);
});

test('an input the model cannot take exits 5', () => {
  const fourChannels = join(work, 'x4.npy');
  writeFileSync(fourChannels, writeNpy(deterministicInput([1, 4, 32, 32])));
  const r = resnet('run', 'resnet18', '--weights', weightsPath, '--input', fourChannels, '--output', join(work, 'o.npy'));
  assert.equal(r.status, 5, r.stderr);
  assert.match(r.stderr, /to have 3 channels, but got 4/);
  const flat = join(work, 'flat.npy');
  writeFileSync(flat, writeNpy(deterministicInput([3, 32, 32])));
  assert.equal(resnet('run', 'resnet18', '--weights', weightsPath, '--input', flat, '--output', join(work, 'o.npy')).status, 5);
});

test("the README's resnet50 table is what `resnet summary resnet50 --markdown` prints", () => {
  const r = resnet('summary', 'resnet50', '--markdown');
  assert.equal(r.status, 0, r.stderr);
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  assert.ok(readme.includes(r.stdout.trim()), 'README table is stale: regenerate it with `resnet summary resnet50 --markdown`');
});
