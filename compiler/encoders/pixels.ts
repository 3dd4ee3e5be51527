// What a frozen image encoder expects of G's images: RGB in [0, 1] at its input
// size, normalised per channel by the statistics it was trained with. G's
// images are tanh outputs in [-1, 1].
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/graph.ts';
import { resize } from '../ops/resize.ts';

export interface ChannelStats {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** OpenAI CLIP's preprocessing statistics (clip/clip.py `_transform`). */
export const CLIP_STATS: ChannelStats = { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] };
/** ImageNet's, which torchvision's VGG16 was trained with. */
export const IMAGENET_STATS: ChannelStats = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** An NCHW image in [-1, 1] as an encoder's input: [0, 1], resized (bicubic, as CLIP's preprocessing) to `size`, normalised. */
export function encoderPixels(b: GraphBuilder, image: Value, size: number, stats: ChannelStats): Value {
  const [, c, h, w] = image.shape;
  if (c !== 3) throw new Error(`an encoder reads RGB images, got ${c} channels`);
  let x = b.mul(b.add(image, 1), 0.5);
  if (h !== size || w !== size) x = resize(b, x, size, size, 'bicubic');
  return b.apply('normalize_channels', [x], { mean: [...stats.mean], std: [...stats.std] });
}
