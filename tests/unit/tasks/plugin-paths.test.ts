/**
 * The files plug-in sections name (judge rubrics, ONNX models, page scorers, static sites,
 * MCP workspace folders and scorer scripts) obey the loader's path rule: inside the task
 * folder after symbolic links, with no link in a folder leading out.
 */
import { symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { browserTaskExtension } from '../../../sandboxes/browser/schema.ts';
import { mcpTaskExtension } from '../../../sandboxes/mcp/schema.ts';
import { buildRewardFunctions } from '../../../rewards/build.ts';
import { rewardsTaskExtension } from '../../../rewards/schema.ts';
import { loadTasks, validateTasks } from '../../../tasks/index.ts';
import { TESTS_ONLY, rejection, removeTrees, writeTree } from './helpers.ts';

afterAll(removeTrees);

const extensions = {
  rewards: rewardsTaskExtension,
  browser: browserTaskExtension,
  mcp_servers: mcpTaskExtension,
};

async function hostSecret(): Promise<{ dir: string; file: string }> {
  const dir = await writeTree({ 'secret.txt': 'TOP-SECRET\n' }, 'host');
  return { dir, file: path.join(dir, 'secret.txt') };
}

async function fieldsRefused(dir: string): Promise<string[]> {
  const { tasks, problems } = await validateTasks(dir, { extensions });
  expect(tasks).toEqual([]);
  expect(JSON.stringify(problems)).not.toContain('TOP-SECRET');
  return problems.map((problem) => problem.path);
}

describe('paths of plug-in sections', () => {
  it('refuses a judge rubric and an ONNX model outside the task folder', async () => {
    const secret = await hostSecret();
    const dir = await writeTree({
      'task.yaml':
        'instruction: x\nrewards:\n  trajectory:\n    - judge: { agent: "openai:x", rubric: rubric.md }\n' +
        '    - model: { onnx: ../../models/m.onnx }\n',
      ...TESTS_ONLY,
    });
    await symlink(secret.file, path.join(dir, 'rubric.md'));
    expect(await fieldsRefused(dir)).toEqual([
      'rewards.trajectory.0.judge.rubric',
      'rewards.trajectory.1.model.onnx',
    ]);
  });

  it('refuses a browser site holding a link out and a scorer that is a link out', async () => {
    const secret = await hostSecret();
    const dir = await writeTree({
      'task.yaml':
        'instruction: x\nenvironment: false\nverifier: false\nbrowser: { site: site, score: score.js }\n',
      'site/index.html': '<p>hi</p>\n',
    });
    await symlink(secret.dir, path.join(dir, 'site', 'host'));
    await symlink(secret.file, path.join(dir, 'score.js'));
    expect(await fieldsRefused(dir)).toEqual(['browser.site', 'browser.score']);
  });

  it('refuses MCP files copied from outside the task folder, a scorer script outside it, and ".." in a destination', async () => {
    const dir = await writeTree({
      'task.yaml':
        'instruction: x\nenvironment: false\nverifier: false\nmcp_servers:\n  servers:\n' +
        '    - name: fs\n      command: "true"\n      files: [{ from: ../../.., to: workspace }]\n' +
        '  score: [{ script: ../scorer.ts }]\n',
    });
    expect(await fieldsRefused(dir)).toEqual(['mcp_servers.0.files.0.from', 'mcp_servers.score']);
    const escapeTo = await writeTree({
      'task.yaml':
        'instruction: x\nenvironment: false\nverifier: false\nmcp_servers:\n' +
        '  - name: fs\n    command: "true"\n    files: [{ from: ws, to: ../../outside }]\n',
      'ws/a.txt': 'a\n',
    });
    expect(await fieldsRefused(escapeTo)).toEqual(['mcp_servers.0.files.0.to']);
  });

  it('refuses MCP files of a Harbor table that lead outside the task folder', async () => {
    const dir = await writeTree({
      'task.toml':
        '[environment]\ndocker_image = "x"\n[[environment.mcp_servers]]\nname = "fs"\ntransport = "stdio"\n' +
        'command = "true"\nfiles = [{ from = "../..", to = "w" }]\n',
      'instruction.md': 'x\n',
      ...TESTS_ONLY,
    });
    expect(await fieldsRefused(dir)).toEqual(['environment.mcp_servers.0.files.0.from']);
  });

  it('loads sections whose paths stay inside', async () => {
    const dir = await writeTree({
      'task.yaml':
        'instruction: x\nenvironment: false\nverifier: false\nbrowser: { site: site, score: score.js }\n' +
        'rewards:\n  trajectory: [{ judge: { agent: "openai:x", rubric: rubric.md } }]\n',
      'site/index.html': '<p>hi</p>\n',
      'score.js': 'true\n',
      'rubric.md': 'Score it.\n',
    });
    const [task] = await loadTasks(dir, { extensions });
    expect(task?.extensions.browser).toMatchObject({ site: 'site', score: 'score.js' });
  });

  it('buildRewardFunctions refuses a rubric linked out of a task built in code', async () => {
    const secret = await hostSecret();
    const dir = await writeTree({ 'rubric.md': null });
    await symlink(secret.file, path.join(dir, 'judge.md'));
    const task = {
      id: 't',
      dir,
      format: 'paddock' as const,
      instruction: 'x',
      tools: [],
      limits: { maxTurns: 1, timeoutMs: 1000, commandTimeoutMs: 1000 },
      metadata: {},
      extensions: { rewards: { trajectory: [{ judge: { agent: 'openai:x', rubric: 'judge.md' } }] } },
    };
    const error = await rejection(
      buildRewardFunctions(task, {
        judgeAgentFactory: () => ({
          name: 'unused',
          open: () => ({ act: () => Promise.reject(new Error('unused')) }),
        }),
      }),
    );
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('rewards.trajectory.0.judge.rubric');
    expect(error.message).toContain('outside the task folder');
    expect(error.message).not.toContain('TOP-SECRET');
  });
});
