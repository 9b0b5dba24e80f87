/** Temporary task folders for loader tests: written from a map of relative path → content. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isPaddockError, type PaddockError } from '../../../harness/errors.ts';

const created: string[] = [];

/** Writes `files` under a new temporary folder and returns the folder. `null` makes an empty folder. */
export async function writeTree(files: Record<string, string | null>, name = 'suite'): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'paddock-tasks-'));
  created.push(root);
  const base = path.join(root, name);
  await mkdir(base, { recursive: true });
  for (const [relative, content] of Object.entries(files)) {
    const target = path.join(base, relative);
    if (content === null) {
      await mkdir(target, { recursive: true });
      continue;
    }
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, content);
  }
  return base;
}

/** Removes every folder `writeTree` made. */
export async function removeTrees(): Promise<void> {
  await Promise.all(created.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/** The files a minimal valid native task needs besides task.yaml. */
export const TESTS_ONLY = { 'tests/test.sh': '#!/bin/bash\necho 1 > /logs/verifier/reward.txt\n' };

/** Awaits `promise` and returns the PaddockError it rejects with (fails the test otherwise). */
export async function rejection(promise: Promise<unknown>): Promise<PaddockError> {
  try {
    await promise;
  } catch (error) {
    if (isPaddockError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}
