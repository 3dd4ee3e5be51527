// A small seedable random-number generator whose whole state is four 32-bit
// words (sfc32), so the data order can be saved in a checkpoint and resumed
// exactly. Not cryptographic; fast and well distributed for shuffles and crops.

export type RngWords = [number, number, number, number];

/** Mixes a seed and a stream tag into four state words (splitmix32). */
export function seedWords(seed: number, stream = 0): RngWords {
  let s = (Math.trunc(seed) ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
  const next = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  return [next(), next(), next(), next() | 1];
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(words: RngWords) {
    [this.a, this.b, this.c, this.d] = words.map((w) => w >>> 0) as RngWords;
  }

  static seeded(seed: number, stream = 0): Rng {
    const r = new Rng(seedWords(seed, stream));
    for (let i = 0; i < 12; i++) r.u32(); // sfc32's recommended warm-up
    return r;
  }

  words(): RngWords {
    return [this.a, this.b, this.c, this.d];
  }

  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = (this.b ^ (this.b >>> 9)) >>> 0; // unsigned: words() go into checkpoints, and setState takes only 32-bit words
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (!(n >= 1 && n <= 4294967296)) throw new Error(`Rng.int: bad range ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.u32();
      if (x < limit) return x % n;
    }
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.float();
    const v = this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher-Yates shuffle of 0..n-1. */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }
}
