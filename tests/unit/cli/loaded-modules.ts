/**
 * Which modules a Node process loads: a child process runs with a module-loading hook
 * (`module.register`, the documented customization-hooks API) whose `load` hook appends
 * each URL to a file before the module is loaded. Every ESM import goes through it, and a
 * CommonJS package imported from ESM (dockerode, playwright-core, onnxruntime-node) comes
 * through it as its entry file, so no package can be loaded without its entry showing.
 * (`process.moduleLoadList` lists only Node's built-ins, and `require.cache` misses ESM.)
 * The child imports TypeScript through tsx, as the CLI does without a build.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** What a child process loaded, in order, and what it printed. */
export interface LoadedModules {
  urls: string[];
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node --import tsx <args>` in `cwd` with the logging hook; the URLs it loaded. */
export function modulesLoadedBy(args: readonly string[], cwd: string): LoadedModules {
  const scratch = mkdtempSync(join(tmpdir(), 'paddock-loaded-'));
  try {
    const log = join(scratch, 'loaded.txt');
    writeFileSync(log, '');
    writeFileSync(
      join(scratch, 'hooks.mjs'),
      `import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function load(url, context, next) {
  appendFileSync(log, url + '\\n');
  return next(url, context);
}
`,
    );
    const register = join(scratch, 'register.mjs');
    writeFileSync(
      register,
      `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(join(scratch, 'hooks.mjs')).href)}, { data: { log: ${JSON.stringify(log)} } });
`,
    );
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--import', register, ...args], {
      cwd,
      encoding: 'utf8',
    });
    return {
      urls: readFileSync(log, 'utf8').split('\n').filter(Boolean),
      status: result.status,
      stdout: result.stdout,
      stderr: result.stderr,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
