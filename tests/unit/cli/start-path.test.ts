/**
 * The start path stays light: importing the composition root (cli/paddock.ts) and putting
 * the built-in plug-ins together — what `paddock --help` does to list agent specs and
 * sandbox kinds — loads none of the heavy dependencies; each plug-in imports its
 * implementation when first used.
 *
 * How the module graph is observed: see loaded-modules.ts (a module-loading hook that
 * logs every URL a child process loads).
 */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { modulesLoadedBy } from './loaded-modules.ts';

const ROOT = resolve(import.meta.dirname, '../../..');

/** Packages that must not load on the start path (issue #16: `--help` ≤ 300 ms). */
const HEAVY = [
  'dockerode',
  'playwright-core',
  'playwright',
  '@modelcontextprotocol/sdk',
  'onnxruntime-node',
  'yaml',
  'smol-toml',
  'zod',
  'tar-stream',
  'typescript',
];

/** The heavy packages that only running something needs (not reading task files). */
const ENGINES = [
  'dockerode',
  'playwright-core',
  'playwright',
  '@modelcontextprotocol/sdk',
  'onnxruntime-node',
];

/** Runs `code` (an ES module body) in a child process; the URLs it loaded, in order. */
function loadedBy(code: string): { urls: string[]; stdout: string } {
  const result = modulesLoadedBy(['--input-type=module', '-e', code], ROOT);
  expect(result.status, result.stderr).toBe(0);
  return { urls: result.urls, stdout: result.stdout };
}

/** The heavy packages among `urls`. */
function heavyIn(urls: readonly string[]): string[] {
  return HEAVY.filter((name) => urls.some((url) => url.includes(`/node_modules/${name}/`)));
}

const PADDOCK = JSON.stringify(pathToFileURL(join(ROOT, 'cli/paddock.ts')).href);

describe('the start path', () => {
  it('loads no heavy dependency when the built-in plug-ins are put together and listed', () => {
    const { urls, stdout } = loadedBy(`
const { createPaddock } = await import(${PADDOCK});
const paddock = createPaddock();
console.log(JSON.stringify({
  agents: paddock.agentSpecs,
  sandboxes: paddock.sandboxKinds.map((kind) => kind.name),
  sections: Object.keys(paddock.taskSections),
}));
`);
    const listed = JSON.parse(stdout) as { agents: string[]; sandboxes: string[]; sections: string[] };
    expect(listed.agents).toContain('openai:<model>[?options]');
    expect(listed.sandboxes).toEqual(['docker']);
    expect(listed.sections).toEqual(
      expect.arrayContaining(['browser', 'mcp_servers', 'rewards', 'credit', 'toy']),
    );
    expect(urls.some((url) => url.endsWith('/cli/paddock.ts'))).toBe(true); // the hook saw the imports
    expect(heavyIn(urls), urls.join('\n')).toEqual([]);
  });

  it('makes the docker provider of a run without loading dockerode until a sandbox is needed', () => {
    const { urls } = loadedBy(`
const { createPaddock } = await import(${PADDOCK});
const provider = createPaddock().sandboxKind('docker').create({ imageMap: {} });
await provider.closeAll();
`);
    expect(heavyIn(urls), urls.join('\n')).toEqual([]);
  });

  it('loads the task loaders and the section schemas when a suite is read, and not the engines', () => {
    const { urls, stdout } = loadedBy(`
const { createPaddock } = await import(${PADDOCK});
const validation = await createPaddock().validateSuite(['tasks/examples', 'tasks/web/click-button', 'tasks/mcp']);
console.log(JSON.stringify({ tasks: validation.tasks.length, problems: validation.problems.length }));
`);
    const validation = JSON.parse(stdout) as { tasks: number; problems: number };
    expect(validation.problems).toBe(0);
    expect(validation.tasks).toBeGreaterThan(2);
    expect(heavyIn(urls)).toEqual(expect.arrayContaining(['yaml', 'zod']));
    expect(heavyIn(urls).filter((name) => ENGINES.includes(name))).toEqual([]);
  });

  it('opens a run and builds the rewards of web tasks without loading the browser driver', () => {
    const { urls, stdout } = loadedBy(`
const { createPaddock } = await import(${PADDOCK});
const paddock = createPaddock();
const tasks = await paddock.loadSuite(['tasks/rewards/web-wizard', 'tasks/examples/fix-bug']);
const run = await paddock.openRun();
const rewards = await Promise.all(tasks.map((task) => run.rewardsFor(task)));
await run.close();
console.log(JSON.stringify({
  tasks: tasks.length,
  providers: run.toolProviders.map((p) => p.name),
  turnRewards: rewards.flatMap((each) => (each.turn ?? []).map((fn) => fn.name)),
}));
`);
    const opened = JSON.parse(stdout) as { tasks: number; providers: string[]; turnRewards: string[] };
    expect(opened.tasks).toBe(2);
    expect(opened.providers).toContain('browser');
    expect(opened.turnRewards.length).toBeGreaterThan(0); // the web task's page reward, made without a browser
    // The rewards builder may load onnxruntime (reward models, ~40 ms); the browser driver,
    // the engine client and the MCP SDK wait for an episode that needs them.
    const drivers = ['playwright-core', 'playwright', 'dockerode', '@modelcontextprotocol/sdk'];
    expect(
      heavyIn(urls).filter((name) => drivers.includes(name)),
      urls.join('\n'),
    ).toEqual([]);
  });
});
