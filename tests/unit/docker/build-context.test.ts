/**
 * Build contexts on the host: .dockerignore matching, listing and the content hash
 * (files only, no engine).
 */
import { chmod, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  globToRegExp,
  hashContext,
  isIgnored,
  listContext,
  parseDockerignore,
} from '../../../sandboxes/docker/build-context.ts';

describe('.dockerignore patterns', () => {
  it('matches * and ? within a segment and ** across segments', () => {
    expect(globToRegExp('*.log').test('a.log')).toBe(true);
    expect(globToRegExp('*.log').test('dir/a.log')).toBe(false);
    expect(globToRegExp('**/*.log').test('dir/sub/a.log')).toBe(true);
    expect(globToRegExp('**/*.log').test('a.log')).toBe(true);
    expect(globToRegExp('file?.txt').test('file1.txt')).toBe(true);
    expect(globToRegExp('[ab].txt').test('c.txt')).toBe(false);
  });

  it('excludes a folder with its contents and lets a later ! rule re-include', () => {
    const rules = parseDockerignore('# comment\n/node_modules\n*.md\n!README.md\n\nbuild/\n');
    expect(isIgnored('node_modules/x/index.js', rules)).toBe(true);
    expect(isIgnored('notes.md', rules)).toBe(true);
    expect(isIgnored('README.md', rules)).toBe(false);
    expect(isIgnored('build/out.o', rules)).toBe(true);
    expect(isIgnored('src/build.ts', rules)).toBe(false);
  });
});

describe('listContext and hashContext', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'paddock-context-unit-'));
    await mkdir(join(dir, 'src'));
    await writeFile(join(dir, 'Dockerfile'), 'FROM paddock/base:bookworm\n');
    await writeFile(join(dir, 'src/main.py'), 'print(1)\n');
    await writeFile(join(dir, '.dockerignore'), 'Dockerfile\n*.tmp\n');
    await writeFile(join(dir, 'scratch.tmp'), 'x');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const hash = async (extra: string[] = []) => hashContext(await listContext(dir, ['Dockerfile']), extra);

  it('lists files sorted, drops ignored ones, keeps the Dockerfile and .dockerignore', async () => {
    const entries = await listContext(dir, ['Dockerfile']);
    expect(entries.map((entry) => `${entry.type}:${entry.path}`)).toEqual([
      'file:.dockerignore',
      'file:Dockerfile',
      'directory:src',
      'file:src/main.py',
    ]);
  });

  it('gives the same hash for the same content, whatever the timestamps', async () => {
    const first = await hash();
    await utimes(join(dir, 'src/main.py'), new Date(0), new Date(0));
    expect(await hash()).toBe(first);
  });

  it('changes the hash when a file, the executable bit or an extra input changes', async () => {
    const first = await hash();
    await chmod(join(dir, 'src/main.py'), 0o755);
    const executable = await hash();
    expect(executable).not.toBe(first);
    await writeFile(join(dir, 'src/main.py'), 'print(2)\n');
    expect(await hash()).not.toBe(executable);
    expect(await hash(['FROM other'])).not.toBe(await hash());
  });

  it('keeps the hash when only an ignored file changes', async () => {
    const first = await hash();
    await writeFile(join(dir, 'scratch.tmp'), 'changed');
    await writeFile(join(dir, 'new.tmp'), 'new');
    expect(await hash()).toBe(first);
  });
});
