// Seedable random numbers for parameter initialisation: a xoshiro128** stream with
// uniform and normal draws, and one process-wide default generator (like torch.manual_seed).
// Pure 32-bit integer arithmetic, so it is fast in any JavaScript engine and identical everywhere.

/** xoshiro128** (Blackman & Vigna 2018), seeded through splitmix32. */
export class Generator {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spareNormal: number | null = null;

  constructor(seed = 0) {
    this.seed(seed);
  }

  seed(seed: number): this {
    let x = seed >>> 0;
    const splitmix32 = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = splitmix32();
    this.s1 = splitmix32();
    this.s2 = splitmix32();
    this.s3 = splitmix32();
    this.spareNormal = null;
    return this;
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  uniform(low: number, high: number): number {
    return low + (high - low) * this.random();
  }

  /** Standard normal by Marsaglia's polar method (no trigonometry; two draws per accepted pair). */
  normal(): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return z;
    }
    // 32-bit uniforms are plenty for float32 parameters.
    let u = 0;
    let v = 0;
    let s = 0;
    do {
      u = (this.nextUint32() / 2147483648) - 1;
      v = (this.nextUint32() / 2147483648) - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const factor = Math.sqrt((-2 * Math.log(s)) / s);
    this.spareNormal = v * factor;
    return u * factor;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

let defaultGenerator = new Generator(0);

/** Seeds the process-wide generator that initialisers use when given none. */
export function manualSeed(seed: number): Generator {
  defaultGenerator = new Generator(seed);
  return defaultGenerator;
}

export function getDefaultGenerator(): Generator {
  return defaultGenerator;
}
