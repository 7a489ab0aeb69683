// A worker thread of the wasm backend (Node worker_threads or a module Web Worker): on
// 'start' it instantiates the kernels on the shared memory with its own stack, says 'ready',
// and from then on runs slices of published jobs until the pool stops (threads.ts).

import { workerLoop, type FromWorker, type ToWorker } from './threads.js';
import { instantiate, nodeAsync } from './loader.js';

interface ParentPort {
  postMessage(message: FromWorker): void;
}

function onMessage(port: ParentPort, message: ToWorker): void {
  switch (message.type) {
    case 'start': {
      let kernels;
      try {
        kernels = instantiate(message.module, message.memory, message.stackTop);
      } catch (error) {
        port.postMessage({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
        return;
      }
      port.postMessage({ type: 'ready' });
      workerLoop(message.memory, message.control, kernels, message.index);
      break;
    }
  }
}

const node = await nodeAsync();
if (node) {
  const port = node.workerThreads.parentPort!;
  port.on('message', (message: ToWorker) => onMessage(port, message));
} else {
  const scope = globalThis as unknown as ParentPort & { onmessage: ((event: MessageEvent<ToWorker>) => void) | null };
  scope.onmessage = (event) => onMessage(scope, event.data);
}
