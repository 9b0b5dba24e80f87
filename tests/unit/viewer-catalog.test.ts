/** The viewer's folder scan: which folders are runs and training outputs, and which paths it refuses. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../viewer/index.ts';

const root = mkdtempSync(join(tmpdir(), 'paddock-viewer-catalog-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function touch(...parts: string[]): void {
  mkdirSync(join(root, ...parts.slice(0, -1)), { recursive: true });
  writeFileSync(join(root, ...parts), '{}');
}

describe('Catalog', () => {
  touch('runs', 'a', 'run.json');
  touch('runs', 'b', 'run.json');
  touch('runs', 'a', 'files', 'x', 'run.json'); // a kept file inside a run: not a run
  touch('out', 'metrics.jsonl');
  touch('out', 'runs', 'step-000001', 'run.json');
  touch('out', 'runs', '.staging', 'step-000002', 'run.json');
  touch('deep', '1', '2', '3', '4', '5', 'run.json');
  const catalog = new Catalog(root, { rescanMs: 0 });

  it('finds runs a few levels deep, not inside another run, nor hidden staging runs, nor too deep', () => {
    expect(
      catalog
        .runs()
        .map((run) => run.id)
        .sort(),
    ).toEqual(['out/runs/step-000001', 'runs/a', 'runs/b']);
  });

  it('finds training outputs with their episode runs, and marks those runs', () => {
    expect(catalog.trainings()).toEqual([
      { id: 'out', dir: join(root, 'out'), runs: ['out/runs/step-000001'] },
    ]);
    expect(catalog.run('out/runs/step-000001')?.training).toBe('out');
  });

  it('finds a run created after the last scan when asked for it', () => {
    const lazy = new Catalog(root, { rescanMs: 60_000 });
    expect(lazy.run('runs/c')).toBeUndefined();
    touch('runs', 'c', 'run.json');
    expect(lazy.run('runs/c')?.dir).toBe(join(root, 'runs', 'c'));
  });

  it('names the root itself "." when it is a run', () => {
    expect(new Catalog(join(root, 'runs', 'a')).runs().map((run) => run.id)).toEqual(['.']);
  });

  it('refuses paths that leave a folder', () => {
    expect(Catalog.inside('/srv/run', 'files/a.txt')).toBe('/srv/run/files/a.txt');
    for (const path of ['../x', 'files/../../x', '/etc/passwd', 'a\0b', '', '.'])
      expect(Catalog.inside('/srv/run', path), path).toBeUndefined();
  });
});
