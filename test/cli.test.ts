// The `resnet` command as a user runs it: a child process per call, checking stdout, the
// one-line errors on stderr and the exit codes; `run` is checked against torch's logits.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { getModel, listBackends } from '../src/index.js';
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
  const report = JSON.parse(r.stdout);
  assert.deepEqual(report.output, [2, 1000]);
  // The backend that ran, not 'auto': the first of native, wasm that this machine has.
  assert.equal(report.backend, listBackends().includes('native') ? 'native' : 'wasm');
  assertCloseToReference(readNpy(readFileSync(out)), expected, 1e-4, 'resnet run resnet18');
});

test('resnet20 on grey 28×28 images: summary takes the channels from --input, run from conv1.weight (torch\'s logits)', () => {
  const summary = resnet('summary', 'resnet20', '--input', '1x28x28', '--json');
  assert.equal(summary.status, 0, summary.stderr);
  const s = JSON.parse(summary.stdout);
  assert.deepEqual(s.outputShape, [1, 10]);
  assert.deepEqual(s.layers.find((l: { name: string }) => l.name === 'layer3').outputShape, [1, 64, 7, 7]);

  // The case resnet20_1x28x28_c7 of test/fixtures/cifar/make_cifar.py: 1 channel, 7 classes.
  const weights = join(work, 'resnet20-grey.safetensors');
  const shapes = [...getModel('resnet20', { inChannels: 1, numClasses: 7 }).stateDict()].map(([k, t]) => [k, t.shape] as const);
  writeFileSync(weights, writeSafetensors(deterministicStateDict(shapes)));
  const input = join(work, 'grey.npy');
  writeFileSync(input, writeNpy(deterministicInput([2, 1, 28, 28])));
  const out = join(work, 'y20.npy');
  const r = resnet('run', 'resnet20', '--weights', weights, '--input', input, '--output', out, '--json');
  assert.equal(r.status, 0, r.stderr);
  const torch = readSafetensors(readFileSync(fixturePath('cifar', 'logits.safetensors'))).get('resnet20_1x28x28_c7')!;
  assertCloseToReference(readNpy(readFileSync(out)), torch, 1e-4, 'resnet run resnet20');
});

test('run takes the class count from fc.weight, as classify and export do', () => {
  const tenClasses = join(work, 'resnet18-10.safetensors');
  const shapes = [...getModel('resnet18', { numClasses: 10 }).stateDict()].map(([k, t]) => [k, t.shape] as const);
  writeFileSync(tenClasses, writeSafetensors(deterministicStateDict(shapes)));
  const out = join(work, 'y10.npy');
  const r = resnet('run', 'resnet18', '--weights', tenClasses, '--input', inputPath, '--output', out, '--backend', 'ref', '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).backend, 'ref');
  assert.deepEqual(readNpy(readFileSync(out)).shape, [2, 10]);
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

test('a state dict that does not fit exits 4 with the counts and first keys on one line, every key with --json', () => {
  const r = resnet('run', 'resnet18', '--num-classes', '10', '--weights', weightsPath, '--input', inputPath, '--output', join(work, 'o.npy'));
  assert.equal(r.status, 4, r.stderr);
  assert.equal(
    r.stderr,
    'resnet: the state dict does not fit resnet18: 2 of another shape, file vs model (fc.weight [1000, 512] vs [10, 512], ' +
      'fc.bias [1000] vs [10]); --json lists every key\n',
  );
  const wrongArch = resnet('run', 'resnet34', '--weights', weightsPath, '--input', inputPath, '--output', join(work, 'o.npy'));
  assert.equal(wrongArch.status, 4);
  assert.match(wrongArch.stderr, /^resnet: the state dict does not fit resnet34: 80 missing \(layer1\.2\.conv1\.weight, layer1\.2\.bn1\.weight, layer1\.2\.bn1\.bias, …\); --json/);
  // resnet18's weights in a resnet50: torch's message runs to 7,734 characters; ours is one short line.
  const args = ['run', 'resnet50', '--weights', weightsPath, '--input', inputPath, '--output', join(work, 'o.npy')];
  const wide = resnet(...args);
  assert.equal(wide.status, 4);
  assert.equal(wide.stderr.trim().split('\n').length, 1);
  assert.ok(wide.stderr.length < 600, `${wide.stderr.length} characters`);
  assert.match(wide.stderr, /165 missing \(.*, …\); 24 of another shape/);
  assert.equal(wide.stdout, '');
  const json = resnet(...args, '--json');
  assert.equal(json.status, 4);
  const details = JSON.parse(json.stdout);
  const model = new Set(getModel('resnet50').stateDict().keys());
  const file = new Set(getModel('resnet18').stateDict().keys());
  assert.deepEqual(details.missingKeys, [...model].filter((k) => !file.has(k) && !k.endsWith('num_batches_tracked')));
  assert.deepEqual(details.unexpectedKeys, [...file].filter((k) => !model.has(k)));
  assert.equal(details.mismatchedKeys.length, 24);
  assert.deepEqual(details.mismatchedKeys[0], { key: 'layer1.0.conv1.weight', expected: [64, 64, 1, 1], got: [64, 64, 3, 3] });
  assert.equal(details.error, json.stderr.replace(/^resnet: /, '').trim());
});

test('--backend native where the addon does not load says why (exit 2)', () => {
  // Node's loader of .node files made to fail, as on a machine where the addon did not build.
  const failAddons = "process.getBuiltinModule('node:module')._extensions['.node'] = () => { throw new Error('cannot open shared object file (simulated)') }";
  const r = spawnSync(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(failAddons)}`, bin, 'run', 'resnet18', '--backend', 'native', '--weights', weightsPath, '--input', inputPath, '--output', join(work, 'o.npy')],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^resnet: --backend native is not available here: native backend: the addon .* is not built or does not load .*cannot open shared object file \(simulated\)/);
});

test('bench --threads above the core count runs, with a warning on stderr', () => {
  const threads = availableParallelism() + 3;
  const r = resnet('bench', 'resnet18', '--backend', 'ref', '--input', '3x32x32', '--threads', String(threads), '--warmup', '0', '--iterations', '1', '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`^resnet: warning: --threads ${threads} is more than the ${availableParallelism()} cores here`));
  assert.equal(JSON.parse(r.stdout).iterations, 1);
  const within = resnet('bench', 'resnet18', '--backend', 'ref', '--input', '3x32x32', '--threads', '1', '--warmup', '0', '--iterations', '1', '--json');
  assert.doesNotMatch(within.stderr, /warning/);
});

test('npx resnet prints no npm warning (no unknown keys in the project\'s npm config)', { skip: spawnSync('npm', ['--version']).status === 0 ? false : 'npm not on PATH' }, () => {
  // npm's own once-a-week update check is no warning of ours, and may wait on the network: off.
  const env = { ...process.env, npm_config_update_notifier: 'false' };
  const r = spawnSync('npm', ['exec', '--offline', '--no', '--', 'resnet', '--version'], { cwd: repoRoot, encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '0.1.0');
  assert.equal(r.stderr, '');
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
