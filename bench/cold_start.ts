// The cold-start process of a Node engine: what a user's script does, from a fresh process to
// the first output, and nothing more, so that bench/run.ts can time this process from its spawn
// to the line it prints. Each engine imports only its own library (dynamic imports below):
//
//   node dist/bench/cold_start.js '<task JSON>'
//     resnet-ts/<backend>  (or native@<isa>, RESNET_NATIVE_ISA set by the parent) the package's entry point, getModel(arch, { weights: <arch>.pth }),
//                          eval, the backend with the run's threads, one forward pass
//     onnxruntime-node     an InferenceSession from <arch>.onnx (CPU EP, the timed rows' options), one run
//
// The input is "imagePath" (float32, [1, C, H, W] raw); prints {"logits", "maxRssKiB"} (peak
// RSS, system.ts's peakRssKiB) and, for ours, the backend's "isa", as one JSON line at once (the
// logits are checked against ours by the parent). bench/torch_worker.py's
// 'coldstart' mode is PyTorch's twin of this.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { onnxruntimeNodeOptions, parseOurs } from './engine_setup.js';
import { peakRssKiB } from './system.js';

interface ColdStartTask {
  engine: string;
  arch: string;
  threads: number;
  modelsDir: string;
  /** [C, H, W] of the image. */
  input: [number, number, number];
  imagePath: string;
}

const task = JSON.parse(process.argv[2]) as ColdStartTask;
const image = new Float32Array(readFileSync(task.imagePath).buffer.slice(0));
const shape = [1, ...task.input];

/** The logits, and the ISA our backend's kernels ran (ours only). */
interface Output {
  logits: Float32Array;
  isa?: string | null;
}

async function ours(backendName: string): Promise<Output> {
  const { getModel, Tensor } = await import('../src/index.js');
  const { useBackend } = await import('../src/tools/bench.js');
  const model = await getModel(task.arch, { weights: join(task.modelsDir, `${task.arch}.pth`) });
  model.eval().requiresGrad_(false); // inference: no graph, the eval plan runs
  const { isa } = useBackend(backendName, task.threads);
  return { logits: model.call(new Tensor(image, shape)).f32, isa };
}

async function onnxruntimeNode(): Promise<Output> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(join(task.modelsDir, `${task.arch}.onnx`), onnxruntimeNodeOptions(task.threads));
  const outputs = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', image, shape) });
  return { logits: outputs[session.outputNames[0]].data as Float32Array };
}

try {
  let output: Output;
  const oursSpec = parseOurs(task.engine);
  if (oursSpec) output = await ours(oursSpec.backend);
  else if (task.engine === 'onnxruntime-node') output = await onnxruntimeNode();
  else throw new Error(`no cold start for '${task.engine}' here (resnet-ts/<backend> or onnxruntime-node)`);
  process.stdout.write(`${JSON.stringify({ ...output, logits: [...output.logits], maxRssKiB: peakRssKiB() })}\n`);
  process.exit(0); // thread pools would otherwise keep the process alive
} catch (e) {
  process.stdout.write(`${JSON.stringify({ error: (e as Error).stack ?? String(e) })}\n`);
  process.exit(1);
}
