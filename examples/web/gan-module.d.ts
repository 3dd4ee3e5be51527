// The generated module's browser.ts, which scripts/build-web.ts binds to the
// name 'gan-module' when it bundles the page.
declare module 'gan-module' {
  import type { Generator } from '../../runtime/module/generator.ts';
  export class NoWebGpuError extends Error {}
  const load: Record<string, (base: URL | string) => Promise<Generator>>;
  export default load;
}
