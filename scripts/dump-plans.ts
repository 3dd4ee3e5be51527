// Writes the plans of the bundled models as JSON, one file per plan, so a
// refactor of the planner can be checked byte for byte against a baseline:
//
//   npx tsx scripts/dump-plans.ts /tmp/plans-before     # on the old code
//   npx tsx scripts/dump-plans.ts /tmp/plans-after      # on the new code
//   diff -r /tmp/plans-before /tmp/plans-after          # no output: same plans
//
// Each model is planned as `gan check --memory` plans it (every network's
// forward and forward + backward program) and as training runs it (the D and
// G step programs of compiler/gan-step.ts with their shared state layout),
// both with the portable DEFAULT_LIMITS and with subgroups on (the limits
// of a device offering the 'subgroups' feature, as lavapipe does).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildGanSteps } from '../compiler/gan-step.ts';
import { networkPlans } from '../compiler/cli/compile.ts';
import { checkFile } from '../compiler/index.ts';
import { DEFAULT_LIMITS, planLimits, type PlanLimits } from '../compiler/plan/index.ts';

const CASES: { file: string; preset?: string }[] = [
  { file: 'models/ms-clip-gan.gan', preset: 'tiny' },
  { file: 'models/variants/uncond-loss.gan', preset: 'tiny' },
  { file: 'models/dcgan.gan', preset: 'tiny' },
  { file: 'models/dcgan.gan' },
];

/** The limits of an adapter offering 'subgroups', with WebGPU's default binding limits. */
const SUBGROUPS: PlanLimits = planLimits({}, ['subgroups']);

/** Every plan of one model under one set of limits, by file name. */
function plansOf(file: string, preset: string | undefined, limits: PlanLimits): Record<string, unknown> {
  const r = checkFile(file, { preset });
  if (!r.model) throw new Error(`${file}${preset ? ` --preset ${preset}` : ''} does not check`);
  const batch = r.model.train.batch;
  const out: Record<string, unknown> = {};
  for (const plan of networkPlans(r.model, batch, limits)) out[plan.name] = plan;
  const steps = buildGanSteps(r.model, batch, limits);
  out.layout = steps.layout;
  out.d_step = steps.dStep.plan;
  out.g_step = steps.gStep.plan;
  return out;
}

const out = process.argv[2];
if (!out) {
  console.error('usage: npx tsx scripts/dump-plans.ts OUT_DIR   (OUT_DIR is emptied first)');
  process.exit(2);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
let files = 0;
for (const c of CASES) {
  for (const [limitsName, limits] of Object.entries({ default: DEFAULT_LIMITS, subgroups: SUBGROUPS })) {
    const dir = join(out, `${c.file.replace(/^models\//, '').replace(/\.gan$/, '').replace(/\//g, '-')}${c.preset ? `.${c.preset}` : ''}`, limitsName);
    mkdirSync(dir, { recursive: true });
    for (const [name, data] of Object.entries(plansOf(c.file, c.preset, limits))) {
      writeFileSync(join(dir, `${name.replace(/[^\w.+-]+/g, '_')}.json`), JSON.stringify(data, null, 1) + '\n');
      files++;
    }
  }
}
console.log(`wrote ${files} plans to ${out}`);
