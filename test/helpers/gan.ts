// Test helpers: check .gan text from memory or from a temporary folder of files.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Diagnostic } from '../../grammar/diagnostics.ts';
import { lineCol } from '../../grammar/render.ts';
import { checkFile, type CheckOptions, type CompileResult } from '../../compiler/index.ts';

/** Writes `files` (name -> text) to a fresh folder and checks `main`. */
export function checkFiles(files: Record<string, string>, main = Object.keys(files)[0], opts: CheckOptions = {}): CompileResult & { dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gan-test-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return { ...checkFile(join(dir, main), opts), dir };
}

export function checkText(text: string, opts: CheckOptions = {}): CompileResult {
  return checkFiles({ 'model.gan': text }, 'model.gan', opts);
}

/** Where a diagnostic points, as 1-based line and column. */
export function position(r: CompileResult, d: Diagnostic): { line: number; col: number; text: string } {
  if (!d.span) return { line: 0, col: 0, text: '' };
  const src = r.sources.get(d.span.file) ?? '';
  const { line, col } = lineCol(src, d.span.offset);
  return { line, col, text: src.slice(d.span.offset, d.span.offset + d.span.length) };
}

export function errors(r: CompileResult): Diagnostic[] {
  return r.diagnostics.filter((d) => d.severity === 'error');
}

/**
 * A small conditional GAN: conditioning augmentation, one stage at 16x16 and
 * one discriminator (`body`: its statements), with the given sizes. The
 * defaults give MINI; the network parity test asks for its own widths and a
 * D64-style discriminator.
 */
export function miniGan(o: { text?: number; z?: number; caOut?: number; ngf?: number; ndf?: number; discriminator?: string } = {}): string {
  const { text = 32, z = 16, caOut = 32, ngf = 8, ndf = 8 } = o;
  const body =
    o.discriminator ??
    `  f = image |> conv(ndf, k = 4, stride = 2) |> leaky_relu(0.2)
  head uncond = f |> conv(1, k = 8, stride = 8, bias = true) |> reshape(1)
  head cond = concat(tile(mu, 8), f) |> conv(1, k = 8, stride = 8, bias = true)
`;
  return `gan Mini
param ngf = ${ngf}
param ndf = ${ndf}
input text: [${text}]
noise z: [${z}] ~ normal
block Up(x, out) { x |> upsample(2) |> conv(2 * out, k = 3) |> batchnorm |> glu }
condition ca {
  mu, logvar = text |> linear(${caOut}) |> glu |> split(2)
  c_hat = mu + exp(0.5 * logvar) * randn_like(mu)
  loss kl = kl_normal(mu, logvar)
}
generator {
  stage g0 @ 16 {
    h = concat(c_hat, z) |> linear(ngf * 4 * 4 * 4, bias = false) |> batchnorm |> glu |> reshape(ngf * 2, 4, 4)
          |> Up(ngf) |> Up(ngf)
    image = h |> conv(3, k = 3) |> tanh
  }
}
discriminator d0 @ 16 {
${body}}
`;
}

/** A small valid model most diagnostic tests start from. */
export const MINI = miniGan();
