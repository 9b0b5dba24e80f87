/**
 * The composition root: plug-ins put together by `createPaddock`, the reward wiring that
 * evaluation and training share, and plug-in modules loaded by path.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BUILTIN_PLUGINS, createPaddock, loadPluginModules, type OpenedRun } from '../../../cli/paddock.ts';
import { defineAgent, isPaddockError, type PaddockPlugin, type Task } from '../../../harness/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
// The judge agent is made at build time but calls nothing: a local base URL is enough.
const paddock = createPaddock({ env: { OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' } });
let run: OpenedRun | undefined;

afterAll(async () => {
  await run?.close();
});

async function rejection(promise: Promise<unknown> | (() => unknown)): Promise<Error & { code?: string }> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

describe('the built-in plug-ins', () => {
  it("passes a task's group judge on to the trainer, and builds a task's rewards once", async () => {
    run = await paddock.openRun();
    const [task] = (await paddock.loadSuite([path.join(ROOT, 'tasks/rewards/judged-summary')])) as [Task];
    const rewards = await run.rewardsFor(task);
    expect(rewards.group?.map((fn) => [fn.name, fn.weight])).toEqual([['judge_group', 0.5]]);
    expect(rewards.trajectory?.map((fn) => fn.name)).toContain('judge');
    expect(await run.rewardsFor(task)).toBe(rewards);
  });

  it('builds page turn rewards for web tasks through the browser plug-in', async () => {
    run ??= await paddock.openRun();
    const [task] = (await paddock.loadSuite([path.join(ROOT, 'tasks/rewards/web-wizard')])) as [Task];
    const rewards = await run.rewardsFor(task);
    expect(rewards.turn?.map((fn) => [fn.name, fn.weight])).toEqual([
      ['page', 0.5],
      ['invalid_call', 0.1],
    ]);
    expect(rewards.group).toEqual([]);
  });

  it('refuses a page reward when no plug-in opened the page reward kind', async () => {
    const withoutBrowser = createPaddock({
      builtins: false,
      plugins: BUILTIN_PLUGINS.filter((plugin) => plugin.name !== 'browser'),
    });
    const opened = await withoutBrowser.openRun();
    try {
      const sections = { ...paddock.taskSections };
      const [task] = (await createPaddock({
        builtins: false,
        plugins: [{ name: 's', taskSections: sections }],
      }).loadSuite([path.join(ROOT, 'tasks/rewards/web-wizard')])) as [Task];
      const error = await rejection(opened.rewardsFor(task));
      expect(error.message).toMatch(/page reward needs the browser plug-in/);
    } finally {
      await opened.close();
    }
  });

  it('names the sandbox kinds and agent specs there are when asked for one that is not', async () => {
    const sandbox = await rejection(() => paddock.sandboxKind('firecracker'));
    expect(sandbox.code).toBe('CONFIG_INVALID');
    expect(sandbox.message).toContain('expected one of: docker');
    const agent = await rejection(paddock.createAgent('gpt5'));
    expect(agent.code).toBe('CONFIG_INVALID');
    expect(agent.message).toContain('oracle, scripted:<file>');
    expect(await rejection(paddock.createAgent('scripted:'))).toMatchObject({ code: 'CONFIG_INVALID' });
  });
});

describe('a plug-in of ones own', () => {
  const opened: string[] = [];
  const closed: string[] = [];
  const echo: PaddockPlugin = {
    name: 'echo',
    agents: {
      echo: {
        usage: 'echo:<text>',
        needsArgument: true,
        create: (text) => defineAgent({ name: `echo:${text}`, act: async () => ({ text, toolCalls: [] }) }),
      },
    },
    taskSections: { echo: z.object({ times: z.number().int() }).strict() },
    open: () => {
      opened.push('echo');
      return { close: async () => void closed.push('echo') };
    },
  };

  it('adds agent kinds, task-file sections and run resources beside the built-in ones', async () => {
    const mine = createPaddock({ plugins: [echo] });
    expect(mine.agentSpecs).toContain('echo:<text>');
    const agent = await mine.createAgent('echo:hi');
    expect(agent.name).toBe('echo:hi');
    expect(Object.keys(mine.taskSections)).toEqual(expect.arrayContaining(['echo', 'rewards', 'browser']));
    const run = await mine.openRun();
    expect(opened).toEqual(['echo']);
    await run.close();
    await run.close();
    expect(closed).toEqual(['echo']);
  });

  it('may not take a name another plug-in registered', async () => {
    const clash: PaddockPlugin = {
      name: 'clash',
      sandboxes: { docker: { description: 'x', create: () => ({}) as never } },
    };
    const error = await rejection(() => createPaddock({ plugins: [clash] }));
    expect(isPaddockError(error, 'CONFIG_INVALID')).toBe(true);
    expect(error.message).toBe(
      'plug-in clash registers the sandbox kind "docker", which plug-in docker already registered',
    );
  });

  it('loads from a module by path, and says what is wrong with a module that is not a plug-in', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'paddock-plugin-'));
    writeFileSync(
      path.join(dir, 'good.mjs'),
      `export default { name: 'far', agents: { far: { usage: 'far', create: () => ({ name: 'far', open: () => ({ act: async () => ({ text: 'x', toolCalls: [] }) }) }) } } };\n`,
    );
    writeFileSync(path.join(dir, 'bad.mjs'), `export const something = 1;\n`);
    const plugins = await loadPluginModules(['./good.mjs'], dir);
    expect(plugins.map((plugin) => plugin.name)).toEqual(['far']);
    expect((await createPaddock({ plugins }).createAgent('far')).name).toBe('far');
    const bad = await rejection(loadPluginModules(['./bad.mjs'], dir));
    expect(bad.code).toBe('CONFIG_INVALID');
    expect(bad.message).toContain('--plugin ./bad.mjs: expected a default export that is a plug-in');
    const missing = await rejection(loadPluginModules(['./nowhere.mjs'], dir));
    expect(missing.message).toContain('--plugin ./nowhere.mjs: the module failed to load');
  });
});
