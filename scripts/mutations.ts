// Plausible bugs for scripts/mutate.ts: each replaces one exact text (that must
// occur exactly once in `file`) and names the test files expected to catch it.
// The first five are the ones issue 7 found passing the whole suite.
export interface Mutation {
  name: string;
  what: string;
  file: string;
  find: string;
  replace: string;
  /** Test files run against the mutant (all of them with --full). */
  tests: string[];
}

export const MUTATIONS: Mutation[] = [
  {
    name: 'adam-beta1-swap',
    what: "Adam's first moment uses (1-b1) m + b1 g",
    file: 'runtime/optim.ts',
    find: 'let mi = h.b1 * m[i] + (1.0 - h.b1) * gi;',
    replace: 'let mi = (1.0 - h.b1) * m[i] + h.b1 * gi;',
    tests: ['test/blocks/adam.test.ts'],
  },
  {
    name: 'leaky-relu-grad-0.2',
    what: "leaky_relu's backward hard-codes slope 0.2",
    file: 'compiler/ops/elementwise.ts',
    find: 'b.mul(gy, b.add(b.mul(b.step(x[0]), 1 - attrs.slope), attrs.slope))',
    replace: 'b.mul(gy, b.add(b.mul(b.step(x[0]), 1 - 0.2), 0.2))',
    tests: ['test/ops/parity.test.ts', 'test/ops/lang-parity.test.ts', 'test/blocks/batchnorm-steps.test.ts'],
  },
  {
    name: 'batchnorm-momentum-ignored',
    what: 'BatchNorm running statistics always use momentum 0.1',
    file: 'compiler/ops/batchnorm.ts',
    find: 'const { eps, momentum } = o;',
    replace: 'const { eps } = o;\n  const momentum = 0.1;',
    tests: ['test/ops/parity.test.ts', 'test/ops/lang-parity.test.ts', 'test/blocks/batchnorm-steps.test.ts'],
  },
  {
    name: 'd-step-real-wrong-swap',
    what: 'the D step feeds the wrong image where the real one belongs',
    file: 'compiler/gan-step.ts',
    find: 'const name = `${pass}.${stage}`;',
    replace: "const name = `${pass === 'real' ? 'wrong' : pass}.${stage}`;",
    tests: ['test/blocks/gan-iteration.test.ts', 'test/blocks/gan-step.test.ts'],
  },
  {
    name: 'align-loss-sign',
    what: 'the alignment loss rewards misalignment: mean(1 + align)',
    file: 'compiler/gan-step.ts',
    find: 'b.mean(b.sub(1, logits))',
    replace: 'b.mean(b.add(1, logits))',
    tests: ['test/blocks/gan-iteration.test.ts', 'test/blocks/gan-step.test.ts'],
  },
];
