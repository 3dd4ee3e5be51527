// The values of the frozen-encoder terms on a batch of images, as IR: CLIP
// guidance mean(1 - cos(E(clip_pixels(fake)), text)) and the perceptual term
// MSE(F(vgg_pixels(fake)), F(vgg_pixels(real))), the real side detached.
// compiler/gan-step.ts adds them to errG; the tests check their gradient with
// respect to the images against PyTorch.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/graph.ts';
import { lowerNetwork } from '../lower.ts';
import { cosine } from '../ops/composite.ts';
import type { FrozenTerm } from './frozen.ts';
import { CLIP_STATS, encoderPixels, IMAGENET_STATS, type ChannelStats } from './pixels.ts';

/** The encoder's result on NCHW images in [-1, 1] (prepared as it expects); the encoder's params are shared by every call on one builder. */
export function encode(b: GraphBuilder, t: Pick<FrozenTerm, 'kind' | 'encoder'>, image: Value): Value {
  const enc = t.encoder;
  const [input] = Object.keys(enc.inputs);
  const size = enc.graph.nodes[enc.inputs[input]].shape[1];
  const stats: ChannelStats = t.kind === 'clip' ? CLIP_STATS : IMAGENET_STATS;
  return lowerNetwork(enc, { batch: image.shape[0], training: false, bind: { [input]: encoderPixels(b, image, size, stats) } }, b).outputs.out;
}

/** The term's unweighted value: `text` for CLIP guidance, `real` images for the perceptual term. */
export function frozenTermValue(b: GraphBuilder, t: Pick<FrozenTerm, 'kind' | 'encoder'>, fake: Value, ctx: { text?: Value; real?: Value }): Value {
  if (t.kind === 'clip') {
    if (!ctx.text) throw new Error('CLIP guidance needs the text embeddings');
    return b.mean(b.sub(1, cosine(b, encode(b, t, fake), ctx.text, 1)));
  }
  if (!ctx.real) throw new Error('the perceptual term needs the real images');
  const d = b.sub(encode(b, t, fake), b.detach(encode(b, t, ctx.real)));
  return b.mean(b.mul(d, d));
}
