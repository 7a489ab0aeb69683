// The browser tests' model worker: the whole script an application needs.
import { serveModelWorker } from '../../../src/web.js';

serveModelWorker();
