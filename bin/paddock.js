#!/usr/bin/env node
// The `paddock` command. It runs the compiled CLI (dist/cli/main.js) when dist/ was built
// from the sources as they are now (see build-stamp.js), and otherwise the TypeScript
// sources through tsx's loader, so a checkout never runs a stale build and one without a
// build still works. An installed package ships dist/ without the sources: it runs dist/.
//
// From dist/, tsx is registered only when the CLI is about to import a TypeScript module
// a user named (a `--plugin x.ts`, an MCP scorer module): the library calls the function
// installed here under Symbol.for('paddock.typescript-loader') first (harness/plugin.ts,
// importModule). Registering tsx costs about 0.1 s and slows every later import, so
// `paddock --help` and every command that needs no TypeScript go without it.
// (Source maps stay off: enabling them costs 0.1–0.2 s; NODE_OPTIONS=--enable-source-maps
// turns them on for a stack trace in TypeScript lines.)
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { distIsFresh } from './build-stamp.js';

const TYPESCRIPT_LOADER = Symbol.for('paddock.typescript-loader');
const root = join(import.meta.dirname, '..');

if (!existsSync(join(root, 'cli/main.ts')) || distIsFresh(root)) {
  let registered;
  globalThis[TYPESCRIPT_LOADER] = () =>
    (registered ??= import('tsx/esm/api').then(({ register }) => {
      register();
    }));
  await import('../dist/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  globalThis[TYPESCRIPT_LOADER] = async () => {}; // in place already
  await import('../cli/main.ts');
}
