// From a `train` setting to the runtime's optimizer: every argument the checker
// accepts (and fills with its default) is one the runtime implements, so a
// setting can no longer pass the checker and be dropped (as SGD momentum was).
import { afterAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import { layoutState } from '../../compiler/plan/index.ts';
import { Runtime } from '../../runtime/executor.ts';
import { Adam, createOptimizer, SGD, type OptimizerSettings } from '../../runtime/optim.ts';
import { checkText, errors, MINI } from '../helpers/gan.ts';

function trainOf(settings: string) {
  const r = checkText(`${MINI}train { ${settings} }\n`);
  expect(errors(r).map((d) => d.message)).toEqual([]);
  return r.model!.train; // typed: its g and d are OptimizerSettings without a cast
}

describe('optimizer settings', () => {
  let rt: Runtime | undefined;
  const runtime = async () => {
    const b = new GraphBuilder();
    b.param('w', [4], { kind: 'zeros' }, 'G');
    return (rt ??= await Runtime.create(layoutState(b.graph)));
  };
  afterAll(() => rt?.destroy());

  it('the checker fills every argument with its default, and the runtime takes them all', async () => {
    const train = trainOf('g = sgd(lr = 0.1)  d = adam(lr = 1e-3)');
    expect(train.g).toEqual({ kind: 'sgd', lr: 0.1, momentum: 0, nesterov: false, weight_decay: 0 });
    expect(train.d).toEqual({ kind: 'adam', lr: 1e-3, betas: [0.5, 0.999], eps: 1e-8, weight_decay: 0 });
    const r = await runtime();
    expect(createOptimizer(r, 'G', train.g)).toBeInstanceOf(SGD);
    expect(createOptimizer(r, 'G', train.d)).toBeInstanceOf(Adam);
  });

  it('non-default arguments reach the optimizer under their runtime names', async () => {
    const train = trainOf('g = sgd(lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 1e-4)  d = adam(lr = 1e-3, betas = (0.0, 0.99), eps = 1e-6, weight_decay = 0.01)');
    const r = await runtime();
    expect((createOptimizer(r, 'G', train.g) as SGD).opts).toEqual({ lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
    expect((createOptimizer(r, 'G', train.d) as Adam).opts).toEqual({ lr: 1e-3, betas: [0, 0.99], eps: 1e-6, weightDecay: 0.01 });
  });

  it('nesterov without momentum is refused by the checker and by the runtime, as torch refuses it', async () => {
    const r = checkText(`${MINI}train { g = sgd(lr = 0.1, nesterov = true) }\n`);
    expect(errors(r).map((d) => d.message)).toEqual(['train.g sgd: nesterov needs a momentum > 0']);
    const rtm = await runtime();
    expect(() => new SGD(rtm, 'G', { lr: 0.1, nesterov: true })).toThrow(/nesterov needs a momentum > 0/);
  });

  it('an argument or optimizer the runtime does not implement is an error, not ignored', async () => {
    const r = await runtime();
    expect(() => createOptimizer(r, 'G', { kind: 'sgd', lr: 0.1, dampening: 0.5 } as OptimizerSettings)).toThrow(/sgd: the runtime does not implement 'dampening'/);
    expect(() => createOptimizer(r, 'G', { kind: 'rmsprop', lr: 0.1 } as unknown as OptimizerSettings)).toThrow(/unknown optimizer 'rmsprop'/);
  });
});
