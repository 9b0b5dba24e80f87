/**
 * Task-file sections given lazily (`{ load }`, harness/plugin.ts): their schemas are
 * loaded when tasks are first read, once, and a schema that fails to load is reported
 * naming the plug-in and the section.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createPaddock } from '../../../cli/paddock.ts';
import { isPaddockError, type PaddockPlugin } from '../../../harness/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const TASK = path.join(ROOT, 'tasks/examples/fix-bug');

describe('lazy task-file sections', () => {
  it('loads a lazy schema once, when tasks are first read, and validates with it', async () => {
    let loads = 0;
    const plugin: PaddockPlugin = {
      name: 'counted',
      taskSections: {
        counted: {
          load: async () => {
            loads++;
            return z.object({ n: z.number() }).optional();
          },
        },
      },
    };
    const paddock = createPaddock({ plugins: [plugin] });
    expect(loads).toBe(0);
    await paddock.loadSuite([TASK]);
    await paddock.validateSuite([TASK]);
    expect(loads).toBe(1);
  });

  it('refuses tasks with CONFIG_INVALID naming the plug-in and section whose schema failed to load, and tries again later', async () => {
    let fail = true;
    const plugin: PaddockPlugin = {
      name: 'flaky',
      taskSections: {
        flaky: {
          load: async () => {
            if (fail) throw new Error('cannot find module ./schema.js');
            return z.unknown();
          },
        },
      },
    };
    const paddock = createPaddock({ plugins: [plugin] });
    const error = await paddock.loadSuite([TASK]).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(isPaddockError(error) && error.code).toBe('CONFIG_INVALID');
    expect((error as Error).message).toBe(
      'plug-in flaky: the schema of the task-file section "flaky" failed to load: cannot find module ./schema.js',
    );
    fail = false;
    await expect(paddock.loadSuite([TASK])).resolves.toHaveLength(1);
  });
});
