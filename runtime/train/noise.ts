// The host-side noise of a training run: z and the conditioning augmentation's
// sample are drawn here, once per iteration, and fed to both the D and the G
// step (StackGAN's single G forward), from a generator whose whole state is
// one 32-bit word, so a checkpoint saves it and a resume continues the stream.
//
// splitmix32 (counter += golden ratio, then a 32-bit finaliser) for uniforms,
// Box-Muller (cosine branch, two uniforms per normal) for normals.

export class NoiseStream {
  private s: number;

  constructor(seed: number) {
    this.s = (seed ^ 0x2545f491) >>> 0;
  }

  private uniform(): number {
    this.s = (this.s + 0x9e3779b9) >>> 0;
    let z = this.s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (((z ^ (z >>> 16)) >>> 0) + 0.5) / 4294967296;
  }

  /** `n` standard normals as float32. */
  normal(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(this.uniform())) * Math.cos(2 * Math.PI * this.uniform());
    return out;
  }

  get state(): number {
    return this.s;
  }

  set state(word: number) {
    if (!Number.isInteger(word) || word < 0 || word > 0xffffffff) throw new Error(`noise state must be a 32-bit word, got ${word}`);
    this.s = word >>> 0;
  }
}
