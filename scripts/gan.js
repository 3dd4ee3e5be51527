#!/usr/bin/env node
// The `gan` command. Sources are TypeScript; tsx compiles them on the fly so
// `npx gan ...` works right after `npm install`, with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../compiler/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
