// The signature of a step program: every feed and output with the role it
// plays in a GAN iteration, so that consumers (the trainer, tests, the bench)
// look values up by what they are ({ role: 'real_image', stage: 'g0' }), never
// by the plan's internal names. Pure data, no compiler imports.

/** The terms of a network's loss; each is a mean over the batch, before its weight. */
export type LossTerm =
  | 'cond_real' | 'cond_wrong' | 'cond_fake'
  | 'uncond_real' | 'uncond_wrong' | 'uncond_fake'
  | 'align_real' | 'align_fake'
  | 'kl'
  | 'colour' // StackGAN-v2's colour consistency of a stage with the one it refines
  | 'clip' // CLIP-image guidance: 1 - cos(frozen CLIP image embedding of a stage's image, text embedding)
  | 'perceptual'; // MSE of frozen VGG16 features of a stage's fake and real images

/** Which of a discriminator's three forward passes. */
export type Pass = 'real' | 'wrong' | 'fake';

export type Role =
  // feeds
  | { role: 'text' } // the model input `text` (the caption embedding)
  | { role: 'input'; name: string } // any other model input
  | { role: 'noise'; name: string } // a declared noise (`noise z: [100] ~ normal`); drawn on the device unless fed
  | { role: 'ca_noise' } // the conditioning augmentation's sample (epsilon of c_hat = mu + sigma * epsilon); drawn unless fed
  | { role: 'real_image'; stage: string } // real images at the stage's resolution, in [-1, 1]
  | { role: 'wrong_image'; stage: string } // real images mismatched with the text
  // outputs
  | { role: 'fake_image'; stage: string } // the generator's image of a stage
  | { role: 'logit'; net: string; pass: Pass; head: string } // a discriminator head's logits, [batch, ...]
  | { role: 'loss_term'; net: string; term: LossTerm; stage?: string } // net 'G': stage = the stage judged
  | { role: 'loss'; net: string }; // the sum of the net's weighted terms: what its gradients are of

export interface StepValue {
  /** The plan's feed or output name (what `Runtime.run` takes and returns). */
  name: string;
  shape: number[];
  role: Role;
  /** Loss terms: the weight of this term in its network's loss. */
  weight?: number;
}

/** A role with some of its fields: `{ role: 'loss_term', net: 'd0' }` matches every term of d0. */
export type RoleQuery = Role extends infer R ? (R extends { role: infer K } ? { role: K } & Partial<Omit<R, 'role'>> : never) : never;

function matches(r: Role, q: RoleQuery): boolean {
  return Object.entries(q).every(([k, v]) => (r as Record<string, unknown>)[k] === v);
}

export function roleStr(r: Role | RoleQuery): string {
  const { role, ...rest } = r;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${v}`);
  return fields.length ? `${role}(${fields.join(', ')})` : role;
}

/** Every value matching the query, in signature order. */
export function findAll(values: readonly StepValue[], q: RoleQuery): StepValue[] {
  return values.filter((v) => matches(v.role, q));
}

/** The one value matching the query; throws when there is none or several. */
export function find(values: readonly StepValue[], q: RoleQuery): StepValue {
  const hits = findAll(values, q);
  if (hits.length !== 1) {
    throw new Error(`${hits.length ? 'several values' : 'no value'} with role ${roleStr(q)} (have: ${values.map((v) => roleStr(v.role)).join(', ') || 'none'})`);
  }
  return hits[0];
}
