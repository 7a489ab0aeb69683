// What a set of pretrained weights is: where its file lives and how to check it, how to prepare
// images for it, and what torchvision reports about it. Plain data, usable in browsers.

/** torchvision's names for a builder's ImageNet weights; DEFAULT is the best of them. */
export type WeightsName = 'IMAGENET1K_V1' | 'IMAGENET1K_V2' | 'DEFAULT';

/**
 * torchvision's ImageClassification preset: resize the shorter side to `resizeSize`, centre-crop
 * `cropSize`×`cropSize`, scale to [0, 1], then normalise each channel with `mean` and `std`.
 */
export interface ImageClassificationTransforms {
  readonly resizeSize: number;
  readonly cropSize: number;
  readonly interpolation: 'bilinear';
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

export interface WeightsMeta {
  /** Class names in the order of the model's outputs; their number is the model's numClasses. */
  readonly categories: readonly string[];
  readonly numParams?: number;
  /** Smallest input height and width the weights accept. */
  readonly minSize?: readonly number[];
  /** How the weights were trained. */
  readonly recipe?: string;
  /** Accuracies by data set, e.g. metrics['ImageNet-1K']['acc@1'] in percent. */
  readonly metrics?: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Multiply-accumulates of one forward pass at the crop size, in billions (torchvision's "GFLOPS"). */
  readonly gflops?: number;
  /** Size of the hosted file in MiB, as torchvision publishes it ("_file_size"). */
  readonly fileSizeMB?: number;
}

/** A weight file for one architecture; build your own to load weights from elsewhere. */
export interface WeightsDescriptor {
  /** The builder the weights fit, e.g. 'resnet50'. */
  readonly arch: string;
  /** e.g. 'IMAGENET1K_V2'. */
  readonly name: string;
  readonly url: string;
  /** The name in the cache; by default the URL's last path segment. */
  readonly fileName?: string;
  /**
   * First hex digits of the file's SHA-256, checked after download; by default taken from the
   * file name as torch.hub does (`resnet50-11ad3fa6.pth` → '11ad3fa6'); '' checks nothing.
   */
  readonly sha256Prefix?: string;
  readonly transforms?: ImageClassificationTransforms;
  readonly meta: WeightsMeta;
}

/** torchvision's own descriptors, every field present. */
export interface ImageNetWeightsDescriptor extends WeightsDescriptor {
  readonly name: Exclude<WeightsName, 'DEFAULT'>;
  readonly fileName: string;
  readonly sha256Prefix: string;
  readonly transforms: ImageClassificationTransforms;
  readonly meta: Required<WeightsMeta>;
}

/** torch.hub's HASH_REGEX: the hash prefix sits between a '-' and a '.' in the file name. */
const HASH_PREFIX = /-([a-f0-9]*)\./;

/** The SHA-256 prefix a file name carries (as torch.hub reads it), or undefined if none. */
export function sha256PrefixOf(fileName: string): string | undefined {
  return HASH_PREFIX.exec(fileName)?.[1];
}

/** The last path segment of a URL, without its query: the file name torch.hub caches it under. */
export function fileNameOf(url: string): string {
  const name = new URL(url).pathname.split('/').pop();
  if (!name) throw new RangeError(`no file name in URL '${url}'`);
  return decodeURIComponent(name);
}
