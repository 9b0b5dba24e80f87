/**
 * importModule (harness/plugin.ts): the user modules paddock imports (`--plugin`, scorer
 * modules) ask for the TypeScript loader the command installed only when they are
 * TypeScript, so that a command importing none never registers one.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { TYPESCRIPT_LOADER_KEY, importModule } from '../../../harness/plugin.ts';

const dir = mkdtempSync(join(tmpdir(), 'paddock-import-module-'));
writeFileSync(join(dir, 'plain.mjs'), 'export default "plain";\n');
writeFileSync(join(dir, 'typed.ts'), 'const value: string = "typed";\nexport default value;\n');
const slot = globalThis as Record<symbol, unknown>;

afterEach(() => {
  delete slot[TYPESCRIPT_LOADER_KEY];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Installs a loader that records each call; returns the calls. */
function installLoader(): string[] {
  const calls: string[] = [];
  slot[TYPESCRIPT_LOADER_KEY] = async () => {
    calls.push('ensure');
  };
  return calls;
}

describe('importModule', () => {
  it('imports a JavaScript module without asking for the TypeScript loader', async () => {
    const calls = installLoader();
    const module = await importModule(pathToFileURL(join(dir, 'plain.mjs')).href);
    expect(module.default).toBe('plain');
    expect(calls).toEqual([]);
  });

  it('asks for the TypeScript loader before importing a .ts module', async () => {
    const calls = installLoader();
    const module = await importModule(`${pathToFileURL(join(dir, 'typed.ts')).href}?v=1`);
    expect(module.default).toBe('typed');
    expect(calls).toEqual(['ensure']);
  });

  it("rejects with the loader's error when the TypeScript loader cannot be put in place", async () => {
    slot[TYPESCRIPT_LOADER_KEY] = async () => {
      throw new Error('no tsx here');
    };
    await expect(importModule(pathToFileURL(join(dir, 'typed.ts')).href)).rejects.toThrow('no tsx here');
  });
});
