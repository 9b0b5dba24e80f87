/**
 * Writes the JSON Schema of `task.yaml` to `tasks/task.schema.json`, for editors (e.g. a
 * `# yaml-language-server: $schema=…` comment in a task file). Run after changing
 * tasks/schema.ts: `npx tsx tasks/emit-schema.ts`. A unit test fails while the committed
 * file is out of date.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { taskJsonSchema } from './schema.ts';

/** Where the schema is committed. */
export const TASK_SCHEMA_FILE = fileURLToPath(new URL('./task.schema.json', import.meta.url));

/** The schema file's text, formatted as the repository's prettier config formats JSON. */
export async function renderTaskSchema(): Promise<string> {
  const options = (await resolveConfig(TASK_SCHEMA_FILE)) ?? {};
  return format(JSON.stringify(taskJsonSchema()), { ...options, filepath: TASK_SCHEMA_FILE });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await writeFile(TASK_SCHEMA_FILE, await renderTaskSchema());
  process.stdout.write(`wrote ${TASK_SCHEMA_FILE}\n`);
}
