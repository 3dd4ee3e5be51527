// Loss curves from a run's metrics.jsonl, as one PNG: one panel per network
// (each discriminator, the generator and its terms, plus speed), each series
// drawn raw (faint) and smoothed (an exponential moving average, debiased at
// the start). Drawn as SVG and rasterised by sharp; the lines need no fonts,
// the titles and legends use whatever fontconfig finds.
//
// metrics.jsonl: one JSON object per logged step, with `step` and numbers,
// flat or nested ({ "step": 3, "d0": { "loss": 1.2 }, "G": { "kl": 0.1 } }).
// The trainer writes { "step", "losses": { "d0.cond_real": .., "G.g0.cond_fake": .., "G.kl": .. },
// "step_ms", "images_per_s" }. Nested keys are flattened with '/' and a
// container ('losses/') dropped; what comes before the first '/' or '.' names
// the panel (the network). Other flat keys go to the panel their name starts
// with (errD1 -> d1, errG -> G); speed keys (ms, images/s) get their own.
import { readFile, rename, writeFile } from 'node:fs/promises';
import sharp from 'sharp';

export interface MetricSeries {
  key: string;
  steps: number[];
  values: number[];
}

export interface CurvePanel {
  title: string;
  series: MetricSeries[];
}

/** Flattens one metrics record into '/'-joined numeric keys. */
export function flattenRecord(rec: unknown, prefix = '', out: Record<string, number> = {}): Record<string, number> {
  if (rec === null || typeof rec !== 'object') return out;
  for (const [k, v] of Object.entries(rec as Record<string, unknown>)) {
    const key = prefix ? `${prefix}/${k}` : k;
    if (typeof v === 'number') out[key] = v;
    else if (v && typeof v === 'object' && !Array.isArray(v)) flattenRecord(v, key, out);
  }
  return out;
}

const SKIP = /^(step|epoch|iteration|iter|wall|time_s|timestamp)$/i;
const SPEED = /(time|_ms$|^ms$|per_s|images|ips|img_s|sec)/i;

/** A flattened key without its container ('losses/d0.loss' -> 'd0.loss'). */
const bare = (key: string) => key.replace(/^(losses|loss|metrics|terms)\//, '');

/** The panel a flattened key belongs to. */
export function panelOf(key: string): string | undefined {
  const k = bare(key);
  const net = /^([^/.]+)[/.]/.exec(k);
  if (net) return net[1];
  if (SKIP.test(k)) return undefined;
  if (SPEED.test(k)) return 'speed';
  const d = /^(?:err|loss_?)?(d\d*)(?:$|[_A-Z])/i.exec(k);
  if (d) return d[1].toLowerCase() === 'd' ? 'D' : d[1].toLowerCase();
  if (/^(?:err|loss_?)?g(?:$|[_A-Z])/i.test(k)) return 'G';
  return 'other';
}

/** A series' legend label inside its panel ('losses/G.g0.cond_fake' in panel G -> 'g0.cond_fake'). */
export function seriesLabel(key: string, panel: string): string {
  const k = bare(key);
  return k.startsWith(`${panel}/`) || k.startsWith(`${panel}.`) ? k.slice(panel.length + 1) : k;
}

/** Parses metrics.jsonl text into panels (malformed lines are skipped: a run may be writing the last one). */
export function metricsPanels(text: string): CurvePanel[] {
  const byKey = new Map<string, MetricSeries>();
  let line = 0;
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    let rec: unknown;
    try {
      rec = JSON.parse(raw);
    } catch {
      continue;
    }
    const flat = flattenRecord(rec);
    const step = typeof flat.step === 'number' ? flat.step : line;
    line++;
    for (const [key, v] of Object.entries(flat)) {
      if (!panelOf(key) || !Number.isFinite(v)) continue;
      let s = byKey.get(key);
      if (!s) byKey.set(key, (s = { key, steps: [], values: [] }));
      s.steps.push(step);
      s.values.push(v);
    }
  }
  const panels = new Map<string, CurvePanel>();
  for (const s of byKey.values()) {
    const title = panelOf(s.key)!;
    let p = panels.get(title);
    if (!p) panels.set(title, (p = { title, series: [] }));
    p.series.push(s);
  }
  const rank = (t: string) => (/^d/i.test(t) ? 0 : t === 'G' || /^g/i.test(t) ? 1 : t === 'speed' ? 3 : 2);
  return [...panels.values()].sort((a, b) => rank(a.title) - rank(b.title) || a.title.localeCompare(b.title, 'en', { numeric: true }));
}

/** Exponential moving average, debiased so the first points are not pulled toward zero. */
export function smooth(values: readonly number[], weight = 0.9): number[] {
  let avg = 0;
  let norm = 0;
  return values.map((v) => {
    avg = weight * avg + (1 - weight) * v;
    norm = weight * norm + (1 - weight);
    return avg / norm;
  });
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
}

function fmt(v: number): string {
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(1) : Number(v.toPrecision(3)).toString();
}

export interface CurveOptions {
  panelWidth?: number;
  panelHeight?: number;
  /** Panels per row (default 2). */
  columns?: number;
  /** Smoothing weight of the moving average (default 0.9). */
  smoothing?: number;
}

/** The SVG of all panels. */
export function curvesSvg(panels: CurvePanel[], opts: CurveOptions = {}): { svg: string; width: number; height: number } {
  const W = opts.panelWidth ?? 520;
  const H = opts.panelHeight ?? 280;
  const cols = Math.max(1, Math.min(opts.columns ?? 2, panels.length || 1));
  const rows = Math.max(1, Math.ceil(panels.length / cols));
  const width = cols * W;
  const height = rows * H;
  const m = { left: 56, right: 12, top: 24, bottom: 26 };
  const parts: string[] = [`<rect width="${width}" height="${height}" fill="white"/>`];
  panels.forEach((p, pi) => {
    const ox = (pi % cols) * W;
    const oy = Math.floor(pi / cols) * H;
    const pw = W - m.left - m.right;
    const ph = H - m.top - m.bottom;
    const smoothed = p.series.map((s) => smooth(s.values, opts.smoothing));
    const steps = p.series.flatMap((s) => s.steps);
    const x0 = Math.min(...steps);
    const x1 = Math.max(...steps, x0 + 1);
    // The y range covers the smoothed lines and the raw points' 1st..99th percentiles: one spike does not flatten the rest.
    const raw = p.series.flatMap((s) => s.values).sort((a, b) => a - b);
    const all = [...smoothed.flat(), quantile(raw, 0.01), quantile(raw, 0.99)];
    let y0 = Math.min(...all);
    let y1 = Math.max(...all);
    if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 0.5, y1 + 0.5];
    const span = y1 - y0;
    [y0, y1] = [y0 - 0.05 * span, y1 + 0.05 * span];
    const X = (s: number) => (ox + m.left + ((s - x0) / (x1 - x0)) * pw).toFixed(1);
    const Y = (v: number) => (oy + m.top + (1 - (Math.min(y1, Math.max(y0, v)) - y0) / (y1 - y0)) * ph).toFixed(1);
    parts.push(`<rect x="${ox + m.left}" y="${oy + m.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
    for (const t of [0, 0.5, 1]) {
      const v = y0 + t * (y1 - y0);
      parts.push(`<line x1="${ox + m.left}" x2="${ox + m.left + pw}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eee"/>`);
      parts.push(`<text x="${ox + m.left - 4}" y="${Y(v)}" font-size="10" text-anchor="end" dominant-baseline="middle" font-family="DejaVu Sans, sans-serif">${esc(fmt(v))}</text>`);
    }
    parts.push(`<text x="${ox + m.left}" y="${oy + H - 8}" font-size="10" font-family="DejaVu Sans, sans-serif">${esc(fmt(x0))}</text>`);
    parts.push(`<text x="${ox + m.left + pw}" y="${oy + H - 8}" font-size="10" text-anchor="end" font-family="DejaVu Sans, sans-serif">step ${esc(fmt(x1))}</text>`);
    parts.push(`<text x="${ox + m.left}" y="${oy + 16}" font-size="13" font-weight="bold" font-family="DejaVu Sans, sans-serif">${esc(p.title)}</text>`);
    p.series.forEach((s, si) => {
      const colour = COLOURS[si % COLOURS.length];
      const line = (vals: number[]) => vals.map((v, k) => `${k ? 'L' : 'M'}${X(s.steps[k])},${Y(v)}`).join('');
      if (s.values.length > 1) {
        parts.push(`<path d="${line(s.values)}" fill="none" stroke="${colour}" stroke-opacity="0.25" stroke-width="1"/>`);
        parts.push(`<path d="${line(smoothed[si])}" fill="none" stroke="${colour}" stroke-width="2"/>`);
      } else {
        parts.push(`<circle cx="${X(s.steps[0])}" cy="${Y(s.values[0])}" r="2.5" fill="${colour}"/>`);
      }
      const label = seriesLabel(s.key, p.title);
      const last = s.values[s.values.length - 1];
      parts.push(`<text x="${ox + W - m.right - 4}" y="${oy + m.top + 12 + 12 * si}" font-size="10" text-anchor="end" fill="${colour}" font-family="DejaVu Sans, sans-serif">${esc(label)} ${esc(fmt(last))}</text>`);
    });
  });
  return { svg: `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`, width, height };
}

/**
 * Reads `metricsPath` (metrics.jsonl) and writes the curves PNG to `outPng`
 * (through a temporary file and a rename, so a viewer never sees half an
 * image). Returns the panels drawn; writes nothing when there is no data yet.
 */
export async function writeCurves(metricsPath: string, outPng: string, opts: CurveOptions = {}): Promise<CurvePanel[]> {
  const panels = metricsPanels(await readFile(metricsPath, 'utf8'));
  if (panels.length === 0) return panels;
  const { svg } = curvesSvg(panels, opts);
  const png = await sharp(Buffer.from(svg)).png().toBuffer();
  const tmp = `${outPng}.${process.pid}.tmp`;
  await writeFile(tmp, png);
  await rename(tmp, outPng);
  return panels;
}
