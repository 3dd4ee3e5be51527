// The synthetic shapes dataset's vocabulary: colours, shapes, sizes and
// backgrounds. Shared by the generator (shapes.ts), the caption-following
// score (dominant foreground colour vs the caption's colour) and tests.

export interface NamedColour {
  name: string;
  rgb: [number, number, number];
}

/** Foreground colours, far apart in RGB so the dominant colour is unambiguous. */
export const SHAPE_COLOURS: NamedColour[] = [
  { name: 'red', rgb: [220, 30, 30] },
  { name: 'green', rgb: [30, 180, 40] },
  { name: 'blue', rgb: [30, 60, 220] },
  { name: 'yellow', rgb: [240, 220, 30] },
  { name: 'purple', rgb: [150, 40, 190] },
  { name: 'orange', rgb: [245, 140, 20] },
  { name: 'cyan', rgb: [30, 210, 220] },
  { name: 'pink', rgb: [250, 120, 190] },
];

export const SHAPE_KINDS: string[] = ['circle', 'square', 'triangle'];

/**
 * Size names; SHAPE_SIZE_FRACTION gives each one's extent as a share of the
 * image side. Large enough that the shape is about 41% of the pixels: at 0.3
 * and 0.55 (14%) no setting of the PyTorch replica's generator followed the
 * caption colour by step 600, at 0.6 and 0.9 it did on three seeds (README,
 * "Training on the shapes data"). Recorded in the dataset's shapes.json.
 */
export const SHAPE_SIZES: string[] = ['small', 'large'];
export const SHAPE_SIZE_FRACTION: Record<string, number> = { small: 0.6, large: 0.9 };

/** Backgrounds: muted, none close to a foreground colour. */
export const BACKGROUNDS: NamedColour[] = [
  { name: 'grey', rgb: [128, 128, 128] },
  { name: 'white', rgb: [245, 245, 245] },
  { name: 'black', rgb: [15, 15, 15] },
  { name: 'brown', rgb: [110, 75, 45] },
];
