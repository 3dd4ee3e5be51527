// The data side of the trainer: what a batch is and what a batch source
// promises. Agreed with the trainer and checkpoint code (issue 8); keep the
// shapes exactly as written here.

export interface TrainBatch {
  /** [B, D] caption embeddings, one of each image's K captions drawn per sample. */
  text: Float32Array;
  /** Real images per stage resolution R: [B, 3, R, R], values in [-1, 1]. */
  real: Map<number, Float32Array>;
  /** Mismatched ("wrong") images per resolution, same layout. */
  wrong: Map<number, Float32Array>;
  /** Dataset indices of the batch's samples and the caption drawn for each. */
  indices: number[];
  captions: number[];
}

/** JSON-able: epoch, cursor, order, rng words. */
export interface DataState {
  [k: string]: unknown;
}

export interface BatchSource {
  /** Images in the dataset. */
  readonly size: number;
  /** Caption embedding width D. */
  readonly textDim: number;
  /** The next batch; the one after it is prepared while the caller's step runs. */
  next(): Promise<TrainBatch>;
  /** Everything needed to continue the exact same sequence of batches. */
  getState(): DataState;
  setState(s: DataState): void;
  close(): Promise<void>;
}

export interface OpenDatasetOptions {
  batch: number;
  /** Stage resolutions, e.g. [64, 128, 256]; the largest drives the crop. */
  resolutions: number[];
  seed: number;
  /** The model's `text` input width; a different embedding width is refused. */
  textDim?: number;
  /**
   * Share (0..1) of wrong images drawn from the real image's own group
   * (captions.jsonl "group": hard negatives, e.g. the same background, so the
   * discriminator must tell pairs apart by what differs); the rest as usual.
   * Needs group ids; 0 (the default) draws exactly as without groups.
   */
  wrongSameGroup?: number;
}
