/**
 * `paddock tasks init` (cli/tasks-init.ts): the folder it makes loads as a valid task in
 * either format, under the name asked for, and it never writes into a folder that holds
 * something. (tests/e2e/cli.test.ts runs the made tasks with the oracle: reward 1.)
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createPaddock } from '../../cli/paddock.ts';
import { initTask } from '../../cli/tasks-init.ts';
import { isPaddockError } from '../../harness/index.ts';

function suite(): string {
  return join(mkdtempSync(join(tmpdir(), 'paddock-init-')), 'my-suite');
}

describe('tasks init', () => {
  it.each(['native', 'harbor'] as const)(
    'makes a %s task that loads without a problem, with a verifier and a solution to run',
    async (format) => {
      const dir = join(suite(), 'sum-numbers');
      const made = initTask({ dir, format });
      expect(made.files).toContain(format === 'native' ? 'task.yaml' : 'task.toml');
      for (const file of ['tests/test.sh', 'solution/solve.sh'])
        expect(statSync(join(dir, file)).mode & 0o111, `${file} is executable`).not.toBe(0);
      const { tasks, problems } = await createPaddock().validateSuite([dir]);
      expect(problems).toEqual([]);
      expect(tasks.map((task) => [task.id, task.format])).toEqual([
        ['my-suite/sum-numbers', format === 'native' ? 'paddock' : 'harbor'],
      ]);
      expect(tasks[0]!.instruction).toMatch(/\/app\/numbers\.txt/);
      expect(tasks[0]!.environment?.build?.dockerfile).toMatch(/Dockerfile$/);
    },
  );

  it('names the task --name: the id of a native task, [task] name of a Harbor one', async () => {
    const root = suite();
    initTask({ dir: join(root, 'folder'), name: 'renamed' });
    initTask({ dir: join(root, 'harbor-folder'), format: 'harbor', name: 'renamed-too' });
    const { tasks, problems } = await createPaddock().validateSuite([root]);
    expect(problems).toEqual([]);
    expect(tasks.map((task) => task.id).sort()).toEqual(['my-suite/harbor-folder', 'my-suite/renamed']);
    expect(readFileSync(join(root, 'harbor-folder/task.toml'), 'utf8')).toMatch(/^name = "renamed-too"$/m);
  });

  it('writes into an empty folder but refuses one that holds anything, writing nothing', () => {
    const empty = suite();
    mkdirSync(empty, { recursive: true });
    expect(initTask({ dir: empty }).files.length).toBeGreaterThan(3);

    const busy = suite();
    mkdirSync(busy, { recursive: true });
    writeFileSync(join(busy, 'notes.txt'), 'mine\n');
    let caught: unknown;
    try {
      initTask({ dir: busy, format: 'harbor' });
    } catch (error) {
      caught = error;
    }
    expect(isPaddockError(caught, 'CONFIG_INVALID')).toBe(true);
    expect((caught as Error).message).toMatch(/my-suite is not empty \(1 entry: notes\.txt\)/);
    expect(existsSync(join(busy, 'task.toml'))).toBe(false);
  });

  it('refuses a name a task id cannot hold', () => {
    expect(() => initTask({ dir: join(suite(), 'ok'), name: 'has space' })).toThrow(
      /a task name is letters, digits, "\.", "_" and "-", got "has space"/,
    );
  });
});
