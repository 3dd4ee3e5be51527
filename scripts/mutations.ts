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
    find: 'let mi = h.b1 * m[i] + h.one_minus_b1 * gi;',
    replace: 'let mi = h.one_minus_b1 * m[i] + h.b1 * gi;',
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
    what: 'the D step judges the wrong image as the real pair and the real image as the wrong pair',
    file: 'compiler/gan-step.ts',
    find: 'dPass(s, d, batch, pass, image(pass), cond)',
    replace: "dPass(s, d, batch, pass, image(pass === 'real' ? 'wrong' : pass === 'wrong' ? 'real' : pass), cond)",
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
  {
    name: 'uniform-as-normal',
    what: '`noise ~ uniform` lowers to a standard-normal draw',
    file: 'compiler/lang/ops/noise.ts',
    find: "noise('rand_uniform', { low: node.attrs.low, high: node.attrs.high })",
    replace: "noise('randn', {})",
    tests: ['test/compiler/op-coverage.test.ts', 'test/ops/random.test.ts'],
  },
  {
    name: 'sgd-momentum-ignored',
    what: "SGD's momentum buffer never accumulates",
    file: 'runtime/optim.ts',
    find: 'let b = h.momentum * buf[i] + d;',
    replace: 'let b = d;',
    tests: ['test/blocks/adam.test.ts', 'test/runtime/state.test.ts'],
  },
  {
    name: 'bn-running-var-biased',
    what: 'BatchNorm running variance updated with the biased batch variance',
    file: 'compiler/ops/batchnorm.ts',
    find: 'b.mul(b.reshape(b.detach(v), [c]), n / (n - 1))',
    replace: 'b.mul(b.reshape(b.detach(v), [c]), 1)',
    tests: ['test/ops/lang-parity.test.ts', 'test/blocks/batchnorm-steps.test.ts'],
  },
  {
    name: 'glu-halves-swapped',
    what: 'GLU gates the second half by the first',
    file: 'compiler/ops/composite.ts',
    find: 'return b.mul(h, b.sigmoid(g));',
    replace: 'return b.mul(g, b.sigmoid(h));',
    tests: ['test/ops/parity.test.ts', 'test/blocks/blocks.test.ts'],
  },
  {
    name: 'uncond-wrong-target',
    what: 'with use_uncond_loss, the wrong pair is judged fake by the unconditional head (StackGAN-v2 judges it real)',
    file: 'compiler/gan-step.ts',
    find: "t.push({ term: 'uncond_wrong', pass: 'wrong', head: 'uncond', target: w.y, weight: w.u });",
    replace: "t.push({ term: 'uncond_wrong', pass: 'wrong', head: 'uncond', target: 0, weight: w.u });",
    tests: ['test/blocks/gan-iteration.test.ts', 'test/blocks/gan-step.test.ts'],
  },
  {
    name: 'kl-weight-ignored',
    what: "the generator's KL term is added with weight 1 whatever objective.kl says",
    file: 'compiler/gan-step.ts',
    find: "terms.push({ name: 'G.kl', v: G.outputs.kl, term: 'kl', weight: w.kl });",
    replace: "terms.push({ name: 'G.kl', v: G.outputs.kl, term: 'kl', weight: 1 });",
    tests: ['test/blocks/gan-iteration.test.ts', 'test/blocks/gan-step.test.ts'],
  },
];
