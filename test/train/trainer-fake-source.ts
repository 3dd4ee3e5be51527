// An in-memory BatchSource for trainer tests: every batch is a pure function
// of the seed and a cursor (the whole data state), so runs are reproducible
// and a resumed source continues the same sequence. `poison` makes the text
// of one batch NaN (to provoke a non-finite loss).
import type { BatchSource, DataState, TrainBatch } from '../../runtime/train/data/types.ts';
import { NoiseStream } from '../../runtime/train/noise.ts';

export class FakeSource implements BatchSource {
  readonly size = 64;
  cursor = 0;
  constructor(
    readonly textDim: number,
    readonly batch: number,
    readonly resolutions: number[],
    readonly seed = 1,
    readonly poison?: number,
  ) {}

  async next(): Promise<TrainBatch> {
    const c = this.cursor++;
    const n = new NoiseStream(this.seed * 100_003 + c);
    const text = n.normal(this.batch * this.textDim);
    if (c === this.poison) text.fill(NaN);
    const img = (r: number) => n.normal(this.batch * 3 * r * r).map((x) => Math.tanh(x));
    const real = new Map(this.resolutions.map((r) => [r, img(r)]));
    const wrong = new Map(this.resolutions.map((r) => [r, img(r)]));
    const indices = Array.from({ length: this.batch }, (_, i) => (c * this.batch + i) % this.size);
    return { text, real, wrong, indices, captions: indices.map(() => 0) };
  }

  getState(): DataState {
    return { cursor: this.cursor };
  }

  setState(s: DataState): void {
    this.cursor = s.cursor as number;
  }

  async close(): Promise<void> {}
}
