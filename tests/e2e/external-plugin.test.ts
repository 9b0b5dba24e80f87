/**
 * A sandbox provider written outside the repository runs `paddock run` through the CLI:
 * the plug-in module (tests/fixtures/plugins/docker-cli-sandbox.mjs, plain JavaScript that
 * imports `PaddockError` from the `paddock` package) is copied to a folder outside the
 * repository — where `node_modules/paddock` is the built package — with a task of its
 * own, named with `--plugin`, chosen with `--sandbox`, stored with the run, and loaded
 * again by `paddock resume`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/paddock.js');

function paddock(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 300_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(() => {
  // The package's entries point into dist/: build it (incremental; quick when up to date).
  const build = spawnSync(process.execPath, [join(ROOT, 'bin/build.js')], { cwd: ROOT, encoding: 'utf8' });
  expect(build.status, build.stderr).toBe(0);
}, 600_000);

/** A folder outside the repository with paddock installed, the plug-in module and a one-task suite. */
function outsideFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'paddock-outside-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'paddock'), 'dir');
  copyFileSync(
    join(ROOT, 'tests/fixtures/plugins/docker-cli-sandbox.mjs'),
    join(dir, 'docker-cli-sandbox.mjs'),
  );
  const task = join(dir, 'suite', 'greet');
  for (const sub of ['solution', 'tests']) mkdirSync(join(task, sub), { recursive: true });
  writeFileSync(
    join(task, 'task.yaml'),
    [
      'instruction: Write the word hello to /app/greeting.txt.',
      'environment:',
      '  image: paddock/base:bookworm',
      '  workdir: /app',
      'limits:',
      '  max_turns: 5',
      '  timeout_sec: 120',
      '',
    ].join('\n'),
  );
  writeFileSync(join(task, 'solution', 'solve.sh'), '#!/bin/bash\necho hello > /app/greeting.txt\n');
  writeFileSync(
    join(task, 'tests', 'test.sh'),
    [
      '#!/bin/bash',
      'mkdir -p /logs/verifier',
      'if [ "$(cat /app/greeting.txt 2>/dev/null)" = hello ]; then echo 1; else echo 0; fi > /logs/verifier/reward.txt',
      '',
    ].join('\n'),
  );
  return dir;
}

describe('a sandbox plug-in written outside the repository', () => {
  it('runs paddock run through the CLI, is stored with the run, and is loaded again by resume', () => {
    const dir = outsideFolder();
    const unknown = paddock(
      ['run', 'suite', '--agent', 'oracle', '--sandbox', 'docker-cli', '--runs-dir', 'runs'],
      dir,
    );
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown sandbox kind "docker-cli"; expected one of: docker');

    const run = paddock(
      [
        'run',
        'suite',
        '--agent',
        'oracle',
        '--plugin',
        './docker-cli-sandbox.mjs',
        '--sandbox',
        'docker-cli',
        '--runs-dir',
        'runs',
        '--json',
      ],
      dir,
    );
    expect(run.stderr).not.toContain('unexpected error');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { runId: string; summary: { total: { meanReward: number } } };
    expect(result.summary.total.meanReward).toBe(1);
    const manifest = JSON.parse(readFileSync(join(dir, 'runs', result.runId, 'run.json'), 'utf8')) as {
      config: { sandbox: string; pluginModules: string[] };
    };
    expect(manifest.config.sandbox).toBe('docker-cli');
    expect(manifest.config.pluginModules).toEqual([join(dir, 'docker-cli-sandbox.mjs')]);
    const episode = JSON.parse(readFileSync(join(dir, 'runs', result.runId, 'episodes.jsonl'), 'utf8')) as {
      status: string;
      verifier: { warnings?: string[] };
    };
    expect(episode.status).toBe('completed');

    // Resumed from another folder: the run knows its plug-in module by its absolute path.
    const resumed = paddock(['resume', result.runId, '--runs-dir', join(dir, 'runs'), '--json'], ROOT);
    expect(resumed.stderr).toContain('0 episode(s) to run');
    expect(resumed.code).toBe(0);
    expect(
      execFileSync('docker', ['ps', '-aq', '--filter', `label=docker-cli.run=${result.runId}`], {
        encoding: 'utf8',
      }).trim(),
    ).toBe('');
  });
});
