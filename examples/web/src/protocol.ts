// The messages between the page and the model's Web Worker (model-worker.ts): one union each
// way, handled in one switch on each side. Every request carries an id its reply repeats;
// progress messages carry the id of the request they report on.

/** An 8-bit RGBA image, as ImageData holds it. */
export interface Rgba {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

/** An 8-bit RGB image (the crop the model sees). */
export interface Rgb {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A row of the model's summary: what the diagram's blocks show on hover. */
export interface LayerInfo {
  name: string;
  type: string;
  outputShape: number[] | null;
  params: number;
  macs: number;
  detail: string;
}

/** Where the weights come from: a URL (fetched, cached, checked) or bytes the user picked. */
export type WeightsSource = { url: string; sha256Prefix?: string } | { file: File };

/** page → worker */
export type Request =
  | { id: number; type: 'describe'; arch: string }
  | { id: number; type: 'load-weights'; arch: string; source: WeightsSource }
  | { id: number; type: 'classify'; image: Rgba }
  | { id: number; type: 'activation'; module: string };

/** worker → page */
export type Reply =
  | {
      id: number;
      type: 'described';
      arch: string;
      svg: string;
      layers: LayerInfo[];
      totalParams: number;
      totalMacs: number;
      /** torchvision's ImageNet weights for the architecture (the URLs the Node builders use). */
      weights: { name: string; url: string; fileSizeMB: number }[];
      categories: string[];
    }
  | { id: number; type: 'progress'; loaded: number; total: number | null; fromCache: boolean }
  | { id: number; type: 'weights-loaded'; arch: string; keys: number; bytes: number; fromCache: boolean; backend: string; threads: number }
  | {
      id: number;
      type: 'classified';
      logits: Float32Array;
      /** The model's input, normalised (1, 3, crop, crop): tests compare it with Node's preprocessing. */
      input: Float32Array;
      crop: Rgb;
      forwardMs: number;
      /** Whether this was the model's first pass, which also packs the weights for the kernels. */
      firstPass: boolean;
      backend: string;
      threads: number;
      /** Why the backend runs one thread only, if it does for want of cross-origin isolation. */
      warning: string | null;
    }
  | { id: number; type: 'activation'; module: string; shape: number[]; width: number; height: number; map: Float32Array }
  | { id: number; type: 'error'; message: string };
