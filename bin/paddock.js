#!/usr/bin/env node
// The `paddock` command. It runs the compiled CLI (dist/cli/main.js) when dist/ was built
// from the sources as they are now (see build-stamp.js), and otherwise the TypeScript
// sources through tsx's loader, so a checkout never runs a stale build and one without a
// build still works. An installed package ships dist/ without the sources: it runs dist/.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { distIsFresh } from './build-stamp.js';

const root = join(import.meta.dirname, '..');
if (!existsSync(join(root, 'cli/main.ts')) || distIsFresh(root)) {
  // The library first, with no loader in the way. Then tsx, for the modules the CLI imports
  // while it runs (`--plugin` modules, MCP scorer modules), which may be TypeScript just as
  // when the sources run: the command behaves the same whether dist/ is fresh or not.
  // Registered once the library is loaded, tsx costs about 0.1 s here instead of 1 s.
  // (Source maps stay off: enabling them costs 0.1–0.2 s; NODE_OPTIONS=--enable-source-maps
  // turns them on for a stack trace in TypeScript lines.)
  await import('../dist/cli/index.js');
  const { register } = await import('tsx/esm/api');
  register();
  await import('../dist/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
