/**
 * The CLI as a user runs it: real processes, the real engine, the real store.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/paddock.js');

function paddock(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 600_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Ids of the containers of one run (by its label). Tests count only their own: other
 * runs on the same engine come and go meanwhile.
 */
function labelledContainers(runId: string): string[] {
  return execFileSync('docker', ['ps', '-aq', '--filter', `label=paddock.run=${runId}`], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
}

/** Ids of paddock containers whose name holds `fragment` (names hold the run and episode ids). */
function containersNamed(fragment: string): string[] {
  return execFileSync(
    'docker',
    ['ps', '-aq', '--filter', 'label=paddock.managed=true', '--filter', `name=${fragment}`],
    { encoding: 'utf8' },
  )
    .split('\n')
    .filter(Boolean);
}

function episodeIds(runsDir: string, runId: string): string[] {
  const file = join(runsDir, runId, 'episodes.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.endsWith('}'))
    .map((line) => (JSON.parse(line) as { episodeId: string }).episodeId);
}

describe('paddock CLI', () => {
  it('refuses invalid task files naming file and field, with exit code 2 and no container started', () => {
    const validate = paddock(['tasks', 'validate', 'tests/fixtures/suites/invalid']);
    expect(validate.code).toBe(2);
    expect(validate.stderr).toMatch(/bad-limits\/task\.yaml.*limits\.max_turns/);
    expect(validate.stderr).toMatch(/no-instruction\/task\.yaml.*instruction/);
    expect(validate.stderr).toMatch(/unknown-key\/task\.yaml: environment\.colour: unknown key/);

    const runsDir = mkdtempSync(join(tmpdir(), 'paddock-e2e-'));
    const run = paddock(['run', 'tests/fixtures/suites/invalid', '--agent', 'oracle', '--runs-dir', runsDir]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/limits\.max_turns/);
    // No run was made, so no container can carry its label; and none of this suite's tasks has one.
    expect(readdirSync(runsDir)).toEqual([]);
    expect(containersNamed('-invalid-')).toEqual([]);
  });

  it('refuses a suite whose rewards cannot be built before any episode runs, naming the task and field', () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'paddock-e2e-'));
    // The summary task's judge needs a model endpoint; none is configured.
    const run = paddock(['run', 'tasks/rewards', '--agent', 'oracle', '--runs-dir', runsDir], {
      OPENAI_API_KEY: '',
      OPENAI_BASE_URL: '',
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /rewards\/judged-summary: rewards\.trajectory\.0: cannot make the judge "openai:gpt-4\.1-mini"/,
    );
    expect(run.stdout).not.toMatch(/\[1\//);
    expect(readdirSync(runsDir)).toEqual([]);
  });

  it('says in one clear message how to start the engine when it is not running', () => {
    const run = paddock(['run', 'tests/fixtures/suites/tiny', '--agent', 'oracle'], {
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
    });
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/setup\.sh|dockerd/);
  });

  it('runs a suite with the oracle, prints a table, and answers --json', () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'paddock-e2e-'));
    const run = paddock([
      'run',
      'tests/fixtures/suites/tiny',
      '--agent',
      'oracle',
      '--concurrency',
      '3',
      '--runs-dir',
      runsDir,
      '--json',
    ]);
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as {
      runId: string;
      summary: { total: { episodes: number; meanReward: number; errors: number } };
    };
    expect(result.summary.total).toMatchObject({ episodes: 6, meanReward: 1, errors: 0 });
    expect(run.stderr).toMatch(/\[6\/6\]/);
    const view = paddock(['view', result.runId, '--text', '--runs-dir', runsDir]);
    expect(view.stdout).toMatch(/tiny\/alpha\s+1\s+1\.000\s+100\.0%/);
  });

  it('after kill -9 mid-run, gc removes the orphans and resume runs only the missing episodes, each once', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'paddock-e2e-'));
    const child = spawn(
      process.execPath,
      [
        BIN,
        'run',
        'tests/fixtures/suites/tiny',
        '--agent',
        'scripted:tests/fixtures/agents/slow.yaml',
        '--concurrency',
        '2',
        '--runs-dir',
        runsDir,
      ],
      { cwd: ROOT },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const runId = await new Promise<string>((resolveRun, reject) => {
      const timer = setTimeout(() => reject(new Error(`no episode finished in time:\n${stderr}`)), 120_000);
      child.stderr.on('data', () => {
        const id = /run (\S+): 6 episode/.exec(stderr)?.[1];
        if (id && /\[1\/6\]/.test(stderr)) {
          clearTimeout(timer);
          resolveRun(id);
        }
      });
    });
    // Kill while a sandbox of the run is alive (two episodes may finish at the same moment).
    for (let waited = 0; labelledContainers(runId).length === 0 && waited < 60_000; waited += 100) {
      await new Promise((resolveWait) => setTimeout(resolveWait, 100));
    }
    child.kill('SIGKILL');
    await new Promise((resolveExit) => child.once('exit', resolveExit));

    const before = episodeIds(runsDir, runId);
    expect(before.length).toBeGreaterThanOrEqual(1);
    expect(before.length).toBeLessThan(6);
    expect(labelledContainers(runId).length).toBeGreaterThan(0); // the killed run's sandboxes

    const gc = paddock(['sandbox', 'gc']);
    expect(gc.code).toBe(0);
    expect(labelledContainers(runId)).toEqual([]);

    const resumed = paddock(['resume', runId, '--runs-dir', runsDir, '--json']);
    expect(resumed.code).toBe(0);
    const after = episodeIds(runsDir, runId);
    expect(after.slice(0, before.length)).toEqual(before);
    expect([...after].sort()).toEqual(
      ['alpha', 'beta', 'delta', 'epsilon', 'gamma', 'zeta'].map((name) => `tiny/${name}#0`),
    );
    expect(labelledContainers(runId)).toEqual([]);
  });

  it('scores 1.0 on every example task with the oracle', () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'paddock-e2e-'));
    const run = paddock([
      'run',
      'tasks/examples',
      '--agent',
      'oracle',
      '--concurrency',
      '4',
      '--runs-dir',
      runsDir,
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as {
      summary: { tasks: { task: string; meanReward: number }[]; total: { errors: number; passRate: number } };
    };
    expect(result.summary.total).toMatchObject({ errors: 0, passRate: 1 });
    expect(result.summary.tasks.length).toBeGreaterThanOrEqual(6);
  });
});

/** Writes a suite folder `name` under a new temporary folder from relative path → content. */
function writeSuite(name: string, files: Record<string, string>): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'paddock-e2e-suite-')), name);
  for (const [relative, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, relative)), { recursive: true });
    writeFileSync(join(dir, relative), content);
  }
  return dir;
}

/** A small native task: writes `word` to /app/out.txt to score 1. `env` goes into `environment.env`. */
function wordTask(name: string, word: string, env = ''): Record<string, string> {
  return {
    [`${name}/task.yaml`]:
      `instruction: Write ${word} into /app/out.txt.\n` +
      `environment: { image: paddock/base:bookworm, workdir: /app, memory_mb: 256${env ? `, env: { ${env} }` : ''} }\n` +
      `limits: { timeout_sec: 60 }\nverifier: { timeout_sec: 30 }\n`,
    [`${name}/tests/test.sh`]:
      `#!/bin/bash\nmkdir -p /logs/verifier\n` +
      `if [ "$(cat /app/out.txt 2>/dev/null)" = "${word}" ]; then echo 1; else echo 0; fi > /logs/verifier/reward.txt\n`,
    [`${name}/solution/solve.sh`]: `#!/bin/bash\necho ${word} > /app/out.txt\n`,
  };
}

interface JsonResult {
  runId: string;
  summary: {
    tasks: { task: string; episodes: number; scores: Record<string, number>; scoreRule?: string }[];
    total: { episodes: number; meanReward: number; errors: number; statuses: Record<string, number> };
  };
}

describe('paddock run: selection, limits and checks', () => {
  it('runs only the tasks --task and --limit select, with the same ids from any path form', () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'paddock-e2e-'));
    const run = paddock([
      'run',
      'tests/fixtures/suites/tiny',
      '--agent',
      'oracle',
      '--task',
      '*ta',
      '--task',
      'tiny/alpha',
      '--limit',
      '3',
      '--runs-dir',
      runsDir,
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as JsonResult;
    // alpha, beta, delta, zeta match; the limit keeps the first three in id order.
    expect(result.summary.tasks.map((task) => task.task)).toEqual(['tiny/alpha', 'tiny/beta', 'tiny/delta']);

    const fromTask = spawnSync(process.execPath, [BIN, 'tasks', 'list', '.'], {
      cwd: join(ROOT, 'tests/fixtures/suites/tiny/alpha'),
      encoding: 'utf8',
    });
    expect(fromTask.stdout).toMatch(/^tiny\/alpha\t/);
  });

  it('refuses a selection that matches nothing, naming the flags', () => {
    const run = paddock(['run', 'tests/fixtures/suites/tiny', '--agent', 'oracle', '--tag', 'no-such-tag']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/no valid task matches --tag no-such-tag/);
  });

  it('--skip-invalid reports each invalid task and runs the rest; without it nothing runs', () => {
    const suite = writeSuite('mixed', {
      ...wordTask('good', 'ok'),
      ...wordTask('unset-var', 'x', 'T: "${PADDOCK_E2E_UNSET}"'),
      'broken/task.yaml': 'instruction: x\nlimits: { max_turns: ten }\n',
    });
    const runsDir = mkdtempSync(join(tmpdir(), 'paddock-e2e-'));

    const strict = paddock(['run', suite, '--agent', 'oracle', '--runs-dir', runsDir]);
    expect(strict.code).toBe(2);
    expect(strict.stderr).toMatch(/broken\/task\.yaml.*limits\.max_turns/);
    expect(strict.stderr).toMatch(/PADDOCK_E2E_UNSET/);
    expect(strict.stderr).toMatch(/--skip-invalid runs the others/);
    expect(readdirSync(runsDir)).toEqual([]);

    const lenient = paddock([
      'run',
      suite,
      '--agent',
      'oracle',
      '--skip-invalid',
      '--runs-dir',
      runsDir,
      '--json',
    ]);
    expect(lenient.code, lenient.stderr).toBe(0);
    expect(lenient.stderr).toMatch(/skipped: .*broken\/task\.yaml/);
    expect(lenient.stderr).toMatch(/skipped: .*PADDOCK_E2E_UNSET/);
    const result = JSON.parse(lenient.stdout) as JsonResult;
    expect(result.summary.tasks.map((task) => task.task)).toEqual(['mixed/good']);
    expect(result.summary.total.meanReward).toBe(1);
    const view = paddock(['view', result.runId, '--text', '--runs-dir', runsDir]);
    expect(view.stdout).toMatch(/2 task\(s\) skipped as invalid/);
  });

  it('refuses the oracle on tasks without a solution before anything runs, naming them', () => {
    const files = wordTask('unsolved', 'u');
    delete files['unsolved/solution/solve.sh'];
    const suite = writeSuite('nosolve', { ...wordTask('solved', 's'), ...files });
    const runsDir = mkdtempSync(join(tmpdir(), 'paddock-e2e-'));
    const run = paddock(['run', suite, '--agent', 'oracle', '--runs-dir', runsDir]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/task nosolve\/unsolved has no reference solution/);
    expect(readdirSync(runsDir)).toEqual([]);
  });

  it('refuses a script whose per-task keys match no task, naming them', () => {
    const script = join(mkdtempSync(join(tmpdir(), 'paddock-e2e-')), 'script.yaml');
    writeFileSync(script, 'tasks:\n  tiny/alpha: { turns: [] }\n  tiny/alhpa: { turns: [] }\n');
    const run = paddock(['run', 'tests/fixtures/suites/tiny', '--agent', `scripted:${script}`]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/"tiny\/alhpa" match no task/);
  });

  it('--max-turns ends episodes at that many turns; a verifier timeout shows as such; named scores are reported per key', () => {
    const suite = writeSuite('report', {
      ...wordTask('slow-verifier', 'v'),
      ...wordTask('named', 'n'),
    });
    writeFileSync(
      join(suite, 'slow-verifier/task.yaml'),
      readFileSync(join(suite, 'slow-verifier/task.yaml'), 'utf8').replace(
        'timeout_sec: 30',
        'timeout_sec: 1',
      ),
    );
    writeFileSync(join(suite, 'slow-verifier/tests/test.sh'), '#!/bin/bash\nsleep 30\n');
    writeFileSync(
      join(suite, 'named/tests/test.sh'),
      '#!/bin/bash\nmkdir -p /logs/verifier\necho \'{"correctness": 1, "performance": 0}\' > /logs/verifier/reward.json\n',
    );
    const script = join(mkdtempSync(join(tmpdir(), 'paddock-e2e-')), 'script.yaml');
    writeFileSync(
      script,
      'turns:\n' + '  - tool_calls: [{ name: bash, arguments: { command: "true" } }]\n'.repeat(3),
    );
    const runsDir = mkdtempSync(join(tmpdir(), 'paddock-e2e-'));
    const run = paddock([
      'run',
      suite,
      '--agent',
      `scripted:${script}`,
      '--max-turns',
      '2',
      '--runs-dir',
      runsDir,
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(
      /report\/slow-verifier#0 limit \(limit: turns\) reward=0\.000 — verifier timed out/,
    );
    expect(run.stderr).toMatch(
      /report\/named#0 limit \(limit: turns\) reward=0\.500 \[correctness=1 performance=0\]/,
    );
    const result = JSON.parse(run.stdout) as JsonResult;
    expect(result.summary.total.statuses).toEqual({ limit: 2 });
    expect(result.summary.tasks.find((task) => task.task === 'report/named')).toMatchObject({
      scores: { correctness: 1, performance: 0 },
      scoreRule: 'mean',
    });
    const view = paddock(['view', result.runId, '--text', '--runs-dir', runsDir]);
    expect(view.stdout).toMatch(/verifier\.correctness=1\.000 {2}verifier\.performance=0\.000/);
    expect(view.stdout).toMatch(/verifier timed out: 1 episode/);
  });
});

/** Runs `command` in bash from the repository root (for pipes); its exit code, stdout and stderr. */
function shell(command: string) {
  const result = spawnSync('bash', ['-c', command], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('paddock CLI: pipes, scaffolds, the scripted example, progress and the viewer', () => {
  it('ends quietly with exit code 0 when the reader of stdout stops early (EPIPE)', () => {
    // About 1 MB of JSON: far more than a pipe holds, so the writes after head exits fail with EPIPE.
    const listed = shell(
      `node bin/paddock.js tasks list tasks --json | head -1; echo "exit=\${PIPESTATUS[0]}"`,
    );
    expect(listed.stdout).toBe('[\nexit=0\n');
    expect(listed.stderr).toBe('');

    const runsDir = mkdtempSync(join(tmpdir(), 'paddock-e2e-'));
    const run = paddock([
      'run',
      'tests/fixtures/suites/tiny',
      '--agent',
      'oracle',
      '--runs-dir',
      runsDir,
      '--json',
    ]);
    const { runId } = JSON.parse(run.stdout) as { runId: string };
    const viewed = shell(
      `node bin/paddock.js view ${runId} --text --full --episode tiny/alpha#0 --runs-dir ${runsDir} | head -1; echo "exit=\${PIPESTATUS[0]}"`,
    );
    expect(viewed.stdout).toMatch(/^.+\nexit=0\n$/);
    expect(viewed.stderr).toBe('');

    // --json: the run for programs, alone on stdout.
    const json = paddock(['view', runId, '--json', '--runs-dir', runsDir]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ runId, planned: 6, done: 6 });
  });

  it.each(['native', 'harbor'])(
    'tasks init --format %s makes a task that validates and that the oracle solves with reward 1, showing its build steps',
    (format) => {
      const dir = join(mkdtempSync(join(tmpdir(), 'paddock-e2e-init-')), 'sum-numbers');
      const init = paddock(['tasks', 'init', dir, '--format', format, '--name', 'sum-numbers']);
      expect(init.code, init.stderr).toBe(0);
      expect(init.stdout).toMatch(format === 'native' ? /task\.yaml/ : /task\.toml/);
      // A context no earlier run built, so that the image is built here and its steps show.
      writeFileSync(join(dir, 'environment/nonce.txt'), `${Date.now()}-${Math.random()}\n`);

      const validate = paddock(['tasks', 'validate', dir]);
      expect(validate.code, validate.stderr).toBe(0);
      expect(validate.stdout).toMatch(/^1 task\(s\) valid, 0 problem\(s\)/);

      const runsDir = mkdtempSync(join(tmpdir(), 'paddock-e2e-'));
      const run = paddock(['run', dir, '--agent', 'oracle', '--runs-dir', runsDir, '--json']);
      expect(run.code, run.stderr).toBe(0);
      const result = JSON.parse(run.stdout) as JsonResult;
      expect(result.summary.total).toMatchObject({ episodes: 1, meanReward: 1, errors: 0 });
      expect(run.stderr).toMatch(
        /building image for \S*sum-numbers: step 1\/\d+ FROM paddock\/base:bookworm/,
      );
      expect(run.stderr).toMatch(/built image for \S*sum-numbers in [\d.]+ s/);

      const again = paddock(['tasks', 'init', dir, '--json']);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(
        /sum-numbers is not empty .*tasks init writes only into a new or empty folder/,
      );
      expect(JSON.parse(again.stdout)).toMatchObject({ error: { code: 'CONFIG_INVALID' } });
    },
  );

  it("runs the README's scripted-agent command line as written: the example script solves word-frequency, with tokens in the progress", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const line = /^paddock run (tasks\/examples .*--agent scripted:agents\/scripted\/example\.yaml.*)$/m.exec(
      readme,
    );
    expect(line, 'README.md shows the scripted example command').not.toBeNull();
    const args = line![1]!
      .replace(/\s+#.*$/, '')
      .trim()
      .split(/\s+/);
    const runsDir = mkdtempSync(join(tmpdir(), 'paddock-e2e-'));
    const run = paddock(['run', ...args, '--runs-dir', runsDir, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as JsonResult & {
      summary: { total: { usage: { promptTokens: number; completionTokens: number }; costUsd: number } };
    };
    expect(result.summary.tasks.map((task) => task.task)).toEqual(['examples/word-frequency']);
    expect(result.summary.total).toMatchObject({
      meanReward: 1,
      usage: { promptTokens: 3002, completionTokens: 201 },
      costUsd: 0,
    });
    // One line per episode off a terminal: the episode, then rate, ETA, mean reward, tokens, cost and errors.
    expect(run.stderr).toMatch(
      /\[1\/1\] examples\/word-frequency#0 completed reward=1\.000 \[reward=1 correctness=1 edge_cases=1\] [\d.]+s · [\d.]+\/min · ETA 0s · mean 1\.000 · tokens 3\.0k in \/ 201 out · \$0 · 0 errors\n/,
    );
  });

  it('paddock view serves the web viewer, prints its URL with the run, and exits 0 on SIGINT', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'paddock-e2e-'));
    const run = paddock([
      'run',
      'tests/fixtures/suites/tiny',
      '--agent',
      'oracle',
      '--task',
      'alpha',
      '--runs-dir',
      runsDir,
      '--json',
    ]);
    const { runId } = JSON.parse(run.stdout) as { runId: string };
    const child = spawn(process.execPath, [BIN, 'view', runId, '--port', '0', '--runs-dir', runsDir], {
      cwd: ROOT,
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolveExit) =>
      child.once('exit', (code) => resolveExit(code)),
    );
    const url = await new Promise<string>((resolveUrl, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed: ${stdout}`)), 60_000);
      child.stdout.on('data', () => {
        const found = /^(http:\/\/127\.0\.0\.1:\d+\/)(#\/run\/\S+)\n/m.exec(stdout);
        if (found) {
          clearTimeout(timer);
          expect(found[2]).toBe(`#/run/${encodeURIComponent(runId)}`);
          resolveUrl(found[1]!);
        }
      });
    });
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });
});
