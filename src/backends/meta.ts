// The meta backend: every op returns a data-less tensor of the right shape, so a whole
// network can be traced for shapes and operation counts in microseconds (see tools/summary).

import { Tensor } from '../core/tensor.js';
import type { Backend } from './backend.js';

export function createMetaBackend(): Backend {
  return {
    name: 'meta',
    setThreads: () => {},
    getThreads: () => 1,
    conv2d: (x, weight, _bias, _p, outH, outW) => Tensor.meta([x.shape[0], weight.shape[0], outH, outW]),
    channelAffine: (x) => Tensor.meta(x.shape),
    channelMoments: (x) => ({ mean: new Float64Array(x.shape[1]), variance: new Float64Array(x.shape[1]).fill(1) }),
    relu: (x) => Tensor.meta(x.shape),
    add: (a) => Tensor.meta(a.shape),
    maxPool2d: (x, _p, outH, outW) => Tensor.meta([x.shape[0], x.shape[1], outH, outW]),
    adaptiveAvgPool2d: (x, outH, outW) => Tensor.meta([x.shape[0], x.shape[1], outH, outW]),
    linear: (x, weight) => Tensor.meta([x.shape[0], weight.shape[0]]),
  };
}
