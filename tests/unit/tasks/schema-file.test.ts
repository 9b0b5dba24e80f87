import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { TASK_SCHEMA_FILE } from '../../../tasks/emit-schema.ts';
import { taskJsonSchema } from '../../../tasks/index.ts';

describe('tasks/task.schema.json', () => {
  it('is up to date with TaskFileSchema (run `npx tsx tasks/emit-schema.ts` when this fails)', async () => {
    const committed: unknown = JSON.parse(await readFile(TASK_SCHEMA_FILE, 'utf8'));
    expect(committed).toEqual(taskJsonSchema());
  });

  it('is strict: unknown keys are refused by editors too', () => {
    expect(taskJsonSchema()).toMatchObject({ type: 'object', additionalProperties: false });
  });
});
