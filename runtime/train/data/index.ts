// The trainer's data side: dataset validation, the batch source, the .npy
// reader, the synthetic shapes dataset and its stand-in text encoder.
export type { BatchSource, DataState, OpenDatasetOptions, TrainBatch } from './types.ts';
export { DatasetLoader, DEFAULT_CACHE_BYTES, openDataset } from './loader.ts';
export { DataError, validateDataset, type CaptionRecord, type ValidDataset } from './validate.ts';
export { NpyError, readNpy, writeNpy, type NpyArray } from './npy.ts';
export { embedCaption, captionWords } from './text-encoder.ts';
export { generateShapes, shapeCaptions, type ShapesOptions } from './shapes.ts';
export { BACKGROUNDS, SHAPE_COLOURS, SHAPE_KINDS, SHAPE_SIZES } from './shapes-palette.ts';
