// Planning: a graph becomes a Plan in the runtime's format
// (runtime/format/plan.ts), phase by phase:
//
//   program.ts   which values the program produces and the nodes they need
//   fuse.ts      which elementwise values are computed inline by their readers
//   homes.ts     fixed homes (arenas, feeds, outputs, gradients), reshape views,
//                the copies and clears around the dispatches
//   group.ts     which nodes share a launch (horizontal and vertical fusion)
//   launches.ts  the kernels of each launch, and its dispatch steps
//   split.ts     launches binding a value over one binding: one dispatch per
//                batch chunk, with windows of the values carrying the batch
//   allocate.ts  transient buffers from liveness
//   report.ts    the memory a plan needs
//
// The state shared by every program of a model (params, gradients, running
// statistics) is laid out once by layoutState (layout.ts).
import { PLAN_FORMAT_VERSION, type Plan, type StateLayout } from '../../runtime/format/plan.ts';
import type { Graph } from '../ir/graph.ts';
import { allocateTransients } from './allocate.ts';
import { chooseInlineValues } from './fuse.ts';
import { groupLaunches, materialisedNodes } from './group.ts';
import { aliasReshapeViews, clearUnwrittenGrads, copyStateUpdates, placeFixedValues } from './homes.ts';
import { emitDispatches, lowerLaunches } from './launches.ts';
import { DEFAULT_LIMITS, maxKernelInputs, type PlanLimits } from './limits.ts';
import { selectComputation, type ProgramSpec } from './program.ts';
import { reportMemory } from './report.ts';

export { layoutState } from './layout.ts';
export { DEFAULT_LIMITS, planLimits, type PlanLimits } from './limits.ts';
export type { ProgramSpec } from './program.ts';
export { formatMemory, optimizerStateBytes } from './report.ts';

/** Plans one program over `graph`, with its params and state where `layout` puts them. */
export function compileProgram(graph: Graph, layout: StateLayout, spec: ProgramSpec, limits: PlanLimits = DEFAULT_LIMITS): Plan {
  const maxLeaves = maxKernelInputs(limits);
  const computation = selectComputation(graph, spec);
  const fusion = chooseInlineValues(computation, maxLeaves);
  const homes = placeFixedValues(computation, layout);
  const views = aliasReshapeViews(computation, fusion, homes);
  const groups = groupLaunches(materialisedNodes(computation, fusion, views, limits), fusion, views, maxLeaves);
  const launches = lowerLaunches(groups, fusion, limits);
  const transients = allocateTransients(launches, computation.roots, homes.home);
  const { kernels, steps } = emitDispatches(launches, homes.home);
  const updates = copyStateUpdates(computation, layout, homes.home);
  const clears = clearUnwrittenGrads(spec.groups ?? [], layout, homes);
  return {
    version: PLAN_FORMAT_VERSION,
    name: spec.name,
    kernels,
    steps: [...clears, ...steps, ...homes.copies, ...updates],
    transients: transients.sizes,
    feeds: homes.feeds,
    outputs: homes.outputs,
    grads: homes.gradParams,
    memory: reportMemory(layout, homes, transients),
    stats: { nodes: computation.nodes.length, dispatches: steps.length, kernels: kernels.length, fusedNodes: fusion.inline.size },
  };
}
