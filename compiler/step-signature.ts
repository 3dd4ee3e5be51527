// The step signature's role types moved to runtime/format/step.ts (the trainer
// reads roles without importing compiler/); re-exported here for callers of the old path.
export * from '../runtime/format/step.ts';
