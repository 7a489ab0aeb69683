// A model worker under Node's worker_threads, for test/model-worker.test.ts: the same
// serveModelWorker a Web Worker's script calls, over parentPort.
import { parentPort } from 'node:worker_threads';
import { serveModelWorker } from '../../src/web/model-worker.js';

serveModelWorker(parentPort!);
