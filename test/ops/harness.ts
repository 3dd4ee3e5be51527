// Runs an IR expression on Dawn and the same expression in PyTorch, forward and
// vector-Jacobian products w.r.t. chosen inputs, on fresh seeded random inputs.
import { grad } from '../../compiler/autodiff.ts';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import type { Value } from '../../compiler/ir/graph.ts';
import { compileProgram, layoutState } from '../../compiler/plan/index.ts';
import type { Plan } from '../../runtime/format/plan.ts';
import type { Domain } from '../../compiler/ops/op.ts';
import { Runtime } from '../../runtime/executor.ts';
import { relErr } from '../oracle/compare.ts';
import { randn, randu } from '../oracle/random.ts';
import type { HostTensor } from '../oracle/tensor.ts';
import type { TorchOracle } from '../oracle/torch.ts';

export function randomInput(shape: number[], domain: Domain, seed: number): HostTensor {
  if (domain === 'positive') return randu(shape, seed, 0.5, 2);
  if (domain === 'unit') return randu(shape, seed, 0, 1);
  if (typeof domain === 'object') {
    const t = randu(shape, seed, 0, domain.ints);
    for (let i = 0; i < t.data.length; i++) t.data[i] = Math.min(Math.floor(t.data[i]), domain.ints - 1);
    return t;
  }
  const t = randn(shape, seed);
  if (domain === 'away0') for (let i = 0; i < t.data.length; i++) t.data[i] = Math.sign(t.data[i] || 1) * (Math.abs(t.data[i]) + 0.1);
  return t;
}

export interface GpuResult {
  out: Record<string, Float32Array>;
  plan: Plan;
  rt: Runtime;
}

/** Builds `build` over inputs x0.., adds VJPs w.r.t. `gradOf` seeded by input `gy`, runs once. */
export async function runIr(
  inputs: HostTensor[],
  build: (b: GraphBuilder, xs: Value[]) => Value,
  gradOf: number[],
  gy?: HostTensor,
): Promise<GpuResult> {
  const b = new GraphBuilder();
  const xs = inputs.map((t, i) => b.input(`x${i}`, t.shape));
  const y = build(b, xs);
  const outputs: Record<string, Value> = { y };
  const feeds: Record<string, Float32Array> = Object.fromEntries(inputs.map((t, i) => [`x${i}`, t.data]));
  if (gradOf.length) {
    const gyv = b.input('gy', y.shape);
    feeds.gy = gy!.data;
    const gs = grad(b, y, gradOf.map((i) => xs[i]), gyv);
    gradOf.forEach((i, k) => {
      const g = gs[k] ?? b.expand(b.scalar(0), xs[i].shape);
      outputs[`g${i}`] = g;
    });
  }
  const layout = layoutState(b.graph);
  const plan = compileProgram(b.graph, layout, { name: 'parity', outputs });
  const rt = await Runtime.create(layout);
  rt.initState(0);
  const prog = await rt.load(plan);
  const out = await rt.run(prog, feeds);
  return { out, plan, rt };
}

/** Python: y from the expression (or statements assigning y), then grads of gy-weighted y. */
export function torchSnippet(torch: string, gradOf: number[]): string {
  const lines = /^\s*y\s*=/m.test(torch) ? [torch] : [`y = ${torch}`];
  lines.push('out = {"y": y}');
  if (gradOf.length) {
    lines.push('y.backward(gy)');
    for (const i of gradOf) lines.push(`out["g${i}"] = x${i}.grad if x${i}.grad is not None else torch.zeros_like(x${i})`);
  }
  return lines.join('\n');
}

export interface Comparison {
  name: string;
  err: number;
  tol: number;
}

export async function compareWithTorch(
  torch: TorchOracle,
  opts: {
    inputs: HostTensor[];
    build: (b: GraphBuilder, xs: Value[]) => Value;
    torch: string;
    gradOf: number[];
    seed: number;
    fwdTol: number;
    gradTol: number;
  },
): Promise<Comparison[]> {
  let yShape: number[] = [];
  {
    // Shape of y, for the random output gradient: build once without running.
    const b = new GraphBuilder();
    yShape = [...opts.build(b, opts.inputs.map((t, i) => b.input(`x${i}`, t.shape))).shape];
  }
  const gy = randn(yShape, opts.seed + 1000);
  const named: Record<string, HostTensor> = Object.fromEntries(opts.inputs.map((t, i) => [`x${i}`, t]));
  const ref = await torch.run(torchSnippet(opts.torch, opts.gradOf), { ...named, gy }, { grad: opts.gradOf.map((i) => `x${i}`) });
  const { out, rt } = await runIr(opts.inputs, opts.build, opts.gradOf, gy);
  rt.destroy();
  const res: Comparison[] = [{ name: 'y', err: relErr(out.y, ref.y.data), tol: opts.fwdTol }];
  for (const i of opts.gradOf) res.push({ name: `g${i}`, err: relErr(out[`g${i}`], ref[`g${i}`].data), tol: opts.gradTol });
  return res;
}
