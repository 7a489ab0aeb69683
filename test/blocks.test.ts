// torchvision's residual blocks saved by torch.save itself (zip and legacy formats) load into
// our BasicBlock/Bottleneck with no key remapping and give torch's outputs; fixtures from
// test/fixtures/blocks/make_blocks.py. Tolerance: max|ours - torch| <= 1e-5 * max|torch|.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BasicBlock, BatchNorm2d, Bottleneck, Sequential, conv1x1 } from '../src/index.js';
import { loadWeightsFile, readSafetensors } from '../src/io/index.js';
import { assertCloseToReference } from './helpers/compare.js';
import { fixturePath } from './helpers/paths.js';

interface BlockSpec {
  block: 'BasicBlock' | 'Bottleneck';
  inplanes: number;
  planes: number;
  stride: number;
  groups: number;
  baseWidth: number;
  dilation: number;
}

const manifest = JSON.parse(readFileSync(fixturePath('blocks', 'blocks.json'), 'utf8')) as { blocks: Record<string, BlockSpec> };
const io = readSafetensors(readFileSync(fixturePath('blocks', 'io.safetensors')));

function build(spec: BlockSpec): BasicBlock | Bottleneck {
  const Block = spec.block === 'BasicBlock' ? BasicBlock : Bottleneck;
  const out = spec.planes * Block.expansion;
  const downsample = new Sequential(conv1x1(spec.inplanes, out, spec.stride), new BatchNorm2d(out));
  return new Block(spec.inplanes, spec.planes, spec.stride, downsample, spec.groups, spec.baseWidth, spec.dilation);
}

for (const [name, spec] of Object.entries(manifest.blocks)) {
  for (const format of ['zip', 'legacy']) {
    test(`${name}: torch.save ${format} file loads strictly and matches torch`, async () => {
      const block = build(spec);
      const stateDict = await loadWeightsFile(fixturePath('blocks', `${name}_${format}.pth`));
      assert.deepEqual([...stateDict.keys()], [...block.stateDict().keys()]);
      block.loadStateDict(stateDict);
      assert.equal(block.bn1.stateDict().get('num_batches_tracked')!.item(), 7);
      block.eval();
      assertCloseToReference(block.call(io.get(`${name}/x`)!), io.get(`${name}/y`)!, 1e-5, `${name} (${format})`);
    });
  }
}
