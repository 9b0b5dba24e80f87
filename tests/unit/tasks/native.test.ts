import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  LOG_DIRS,
  PYTEST_REPORT_DIR,
  loadTasks,
  pytestWarnings,
  validateTasks,
} from '../../../tasks/index.ts';
import { TESTS_ONLY, rejection, removeTrees, writeTree } from './helpers.ts';

afterAll(removeTrees);

/** Loads the one task folder `files` describe, given directly (not as a suite). */
async function loadOne(files: Record<string, string | null>, options = {}) {
  const dir = await writeTree(files, 'my-task');
  const tasks = await loadTasks(dir, options);
  expect(tasks).toHaveLength(1);
  return { dir, task: tasks[0]! };
}

/** The problems of the one task folder `files` describe. */
async function problemsOf(files: Record<string, string | null>, options = {}) {
  const dir = await writeTree(files, 'bad-task');
  const { tasks, problems } = await validateTasks(dir, options);
  expect(tasks).toEqual([]);
  return { dir, file: path.join(dir, 'task.yaml'), problems };
}

describe('task.yaml defaults', () => {
  it('fills every default documented in harness/task.ts', async () => {
    const { dir, task } = await loadOne({ 'task.yaml': 'instruction: Do it.\n', ...TESTS_ONLY });
    expect(task).toEqual({
      id: `${path.basename(path.dirname(dir))}/my-task`,
      dir,
      format: 'paddock',
      instruction: 'Do it.',
      environment: {
        image: 'paddock/base:bookworm',
        cpus: 1,
        memoryMb: 1024,
        pids: 256,
        network: false,
        env: {},
        files: [],
      },
      tools: ['bash', 'read_file', 'write_file', 'edit_file', 'submit'],
      limits: { maxTurns: 30, timeoutMs: 600_000, commandTimeoutMs: 120_000 },
      verifier: {
        files: [{ hostPath: path.join(dir, 'tests'), sandboxPath: '/tests' }],
        command: 'bash /tests/test.sh',
        env: {},
        timeoutMs: 120_000,
        user: 'root',
        reward: { kind: 'files', dir: '/logs/verifier' },
        rewardRange: [0, 1],
        // Harbor's log folders exist for every paddock verifier, and /logs/verifier is kept.
        logDirs: ['/logs/verifier', '/logs/agent', '/logs/artifacts'],
        keepDir: '/logs/verifier',
        outputWarnings: pytestWarnings,
      },
      metadata: {},
      extensions: {},
    });
  });

  it('builds environment/Dockerfile when the folder has one', async () => {
    const { dir, task } = await loadOne({
      'task.yaml': 'instruction: Do it.\n',
      'environment/Dockerfile': 'FROM paddock/base:bookworm\n',
      ...TESTS_ONLY,
    });
    expect(task.environment?.build).toEqual({
      contextDir: path.join(dir, 'environment'),
      dockerfile: 'Dockerfile',
    });
    expect(task.environment?.image).toBeUndefined();
  });

  it('uploads solution/ to /solution and runs solve.sh when the folder has one', async () => {
    const { dir, task } = await loadOne({
      'task.yaml': 'instruction: Do it.\n',
      'solution/solve.sh': 'echo solved\n',
      'solution/helper.py': 'print(1)\n',
      ...TESTS_ONLY,
    });
    expect(task.solution).toEqual({
      kind: 'script',
      files: [{ hostPath: path.join(dir, 'solution'), sandboxPath: '/solution' }],
      command: 'bash /solution/solve.sh',
      env: {},
    });
  });

  it('reads the instruction from instruction.md beside task.yaml', async () => {
    const { task } = await loadOne({
      'task.yaml': 'metadata: { difficulty: easy }\n',
      'instruction.md': '# Title\n\nDo the thing.\n\n',
      ...TESTS_ONLY,
    });
    expect(task.instruction).toBe('# Title\n\nDo the thing.');
  });

  it('gives a task without a sandbox only the submit tool', async () => {
    const { task } = await loadOne({
      'task.yaml': 'instruction: Answer.\nenvironment: false\nverifier: false\n',
    });
    expect(task.environment).toBeUndefined();
    expect(task.verifier).toBeUndefined();
    expect(task.tools).toEqual(['submit']);
  });
});

describe('task.yaml mapping', () => {
  it('maps every field, with seconds as milliseconds and host paths made absolute', async () => {
    const { dir, task } = await loadOne({
      'task.yaml': `
id: custom-id
instruction: Do it.
system_prompt: You are careful.
environment:
  dockerfile: docker/Custom.Dockerfile
  cpus: 0.5
  memory_mb: 512
  pids: 64
  storage_mb: 2048
  network: true
  workdir: /work
  user: agent
  env: { MODE: fast, PORT: 8080, DEBUG: false }
  files:
    - { from: data/, to: /work/data }
    - { from: notes.txt, to: /work/notes.txt }
tools: [bash, submit]
limits: { max_turns: 5, timeout_sec: 1.5, max_tokens: 10000, command_timeout_sec: 30 }
verifier:
  command: python3 /checks/check.py
  timeout_sec: 45
  reward: exit-code
  env: { STRICT: 1 }
  user: tester
  cwd: /work
  files: [{ from: checks, to: /checks }]
solution: { script: scripts/fix.sh, env: { FAST: "yes" } }
metadata: { tags: [a, b], difficulty: hard, anything: { nested: true } }
`,
      'docker/Custom.Dockerfile': 'FROM scratch\n',
      'data/x.csv': 'a,b\n',
      'notes.txt': 'hi\n',
      'checks/check.py': 'print(1)\n',
      'scripts/fix.sh': 'true\n',
    });
    expect(task.id).toBe(`${path.basename(path.dirname(dir))}/custom-id`);
    expect(task.systemPrompt).toBe('You are careful.');
    expect(task.environment).toEqual({
      build: { contextDir: path.join(dir, 'docker'), dockerfile: 'Custom.Dockerfile' },
      cpus: 0.5,
      memoryMb: 512,
      pids: 64,
      storageMb: 2048,
      network: true,
      workdir: '/work',
      user: 'agent',
      env: { MODE: 'fast', PORT: '8080', DEBUG: 'false' },
      files: [
        { hostPath: path.join(dir, 'data'), sandboxPath: '/work/data' },
        { hostPath: path.join(dir, 'notes.txt'), sandboxPath: '/work/notes.txt' },
      ],
    });
    expect(task.tools).toEqual(['bash', 'submit']);
    expect(task.limits).toEqual({ maxTurns: 5, timeoutMs: 1500, maxTokens: 10000, commandTimeoutMs: 30_000 });
    expect(task.verifier).toEqual({
      files: [{ hostPath: path.join(dir, 'checks'), sandboxPath: '/checks' }],
      command: 'python3 /checks/check.py',
      cwd: '/work',
      env: { STRICT: '1' },
      timeoutMs: 45_000,
      user: 'tester',
      reward: { kind: 'exit-code' },
      rewardRange: [0, 1],
      logDirs: [...LOG_DIRS],
      keepDir: '/logs/verifier',
      outputWarnings: pytestWarnings,
    });
    expect(task.solution).toEqual({
      kind: 'script',
      files: [{ hostPath: path.join(dir, 'scripts'), sandboxPath: '/solution' }],
      command: 'bash /solution/fix.sh',
      env: { FAST: 'yes' },
    });
    expect(task.metadata).toEqual({ tags: ['a', 'b'], difficulty: 'hard', anything: { nested: true } });
  });

  it('uploads a solution script at the task root alone, not the whole folder', async () => {
    const { dir, task } = await loadOne({
      'task.yaml': 'instruction: x\nsolution: solve.sh\n',
      'solve.sh': 'true\n',
      ...TESTS_ONLY,
    });
    expect(task.solution).toEqual({
      kind: 'script',
      files: [{ hostPath: path.join(dir, 'solve.sh'), sandboxPath: '/solution/solve.sh' }],
      command: 'bash /solution/solve.sh',
      env: {},
    });
  });

  it('takes a list of tool calls as the reference solution', async () => {
    const { task } = await loadOne({
      'task.yaml':
        'instruction: x\nsolution:\n  - tool: submit\n    arguments: { answer: "42" }\n  - tool: browser_click\n',
      ...TESTS_ONLY,
    });
    expect(task.solution).toEqual({
      kind: 'actions',
      actions: [
        { tool: 'submit', arguments: { answer: '42' } },
        { tool: 'browser_click', arguments: {} },
      ],
    });
  });

  it('reads the pytest-output reward kind', async () => {
    const { task } = await loadOne({
      'task.yaml': 'instruction: x\nverifier: { reward: pytest-output }\n',
      ...TESTS_ONLY,
    });
    expect(task.verifier?.reward).toMatchObject({
      kind: 'reader',
      name: 'pytest-output',
      dirs: [PYTEST_REPORT_DIR],
    });
    expect(task.verifier?.reward.kind === 'reader' && task.verifier.reward.env?.({})).toEqual({
      PYTEST_ADDOPTS: `--junitxml=${PYTEST_REPORT_DIR}/junit.xml`,
    });
  });
});

describe('task.yaml errors name the file, the field path and what was expected', () => {
  it('refuses a wrong type with the expected kind and the value given', async () => {
    const { file, problems } = await problemsOf({
      'task.yaml': 'instruction: x\nlimits:\n  max_turns: ten\n',
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([
      { file, path: 'limits.max_turns', message: 'expected a positive integer, got "ten"' },
    ]);
  });

  it('throws TASK_INVALID whose message reads file: field: expectation', async () => {
    const dir = await writeTree(
      { 'task.yaml': 'instruction: x\nlimits:\n  max_turns: ten\n', ...TESTS_ONLY },
      'x',
    );
    const error = await rejection(loadTasks(dir, { cwd: path.dirname(path.dirname(dir)) }));
    expect(error.code).toBe('TASK_INVALID');
    expect(error.message).toBe(
      `${path.join(path.basename(path.dirname(dir)), 'x', 'task.yaml')}: limits.max_turns: expected a positive integer, got "ten"`,
    );
    expect(error.details).toEqual({
      file: path.join(dir, 'task.yaml'),
      issues: [
        {
          file: path.join(dir, 'task.yaml'),
          path: 'limits.max_turns',
          message: 'expected a positive integer, got "ten"',
        },
      ],
    });
  });

  it('refuses a negative or fractional count', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\nlimits: { max_turns: 2.5, timeout_sec: -1 }\n',
      ...TESTS_ONLY,
    });
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ['limits.max_turns', 'expected a positive integer, got 2.5'],
      [
        'limits.timeout_sec',
        'expected a number of seconds above 0 and at most 2147483.647 (about 24.8 days), got -1',
      ],
    ]);
  });

  it('refuses an unknown top-level key, suggesting the field meant', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\nverfier: { command: x }\n',
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([
      expect.objectContaining({ path: 'verfier', message: 'unknown key (did you mean "verifier"?)' }),
    ]);
  });

  it('refuses an unknown top-level key that no plug-in registered', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\nbrowser: { start_url: x }\n',
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'browser',
        message: 'unknown key: not a task.yaml field, and no plug-in registered a section of this name',
      }),
    ]);
  });

  it('refuses an unknown nested key with its full path', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\nenvironment: { imge: foo }\n',
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([
      expect.objectContaining({ path: 'environment.imge', message: 'unknown key (did you mean "image"?)' }),
    ]);
  });

  it('lists the accepted keys when no known key is close', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\nlimits: { zzz: 1 }\n',
      ...TESTS_ONLY,
    });
    expect(problems[0]?.message).toBe(
      'unknown key (expected one of: max_turns, timeout_sec, max_tokens, command_timeout_sec)',
    );
  });

  it('refuses a boolean written as a string', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\nenvironment: { network: "no" }\n',
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([
      expect.objectContaining({ path: 'environment.network', message: 'expected true or false, got "no"' }),
    ]);
  });

  it('refuses an unknown tool name, listing the tools', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\ntools: [bash, shell]\n',
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'tools.1',
        message: 'expected "bash" or "read_file" or "write_file" or "edit_file" or "submit", got "shell"',
      }),
    ]);
  });

  it('refuses a relative sandbox path', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\nenvironment: { files: [{ from: a.txt, to: app/a.txt }] }\n',
      'a.txt': '',
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'environment.files.0.to',
        message: 'expected an absolute path in the sandbox (starting with /), got "app/a.txt"',
      }),
    ]);
  });

  it('refuses an environment variable name the shell cannot take', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\nenvironment: { env: { 1BAD: x } }\n',
      ...TESTS_ONLY,
    });
    expect(problems[0]?.path).toBe('environment.env.1BAD');
  });

  it('narrows a failing union to the form that was meant', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\nsolution: { script: s.sh, envv: {} }\n',
      's.sh': '',
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([
      expect.objectContaining({ path: 'solution.envv', message: 'unknown key (did you mean "env"?)' }),
    ]);
  });

  it('says what a union accepts when the value fits none of its forms', async () => {
    const { problems } = await problemsOf({ 'task.yaml': 'instruction: x\nsolution: 5\n', ...TESTS_ONLY });
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'solution',
        message: 'expected a script path, a {script, env} mapping or a list of {tool, arguments}, got 5',
      }),
    ]);
  });

  it('refuses a task without an instruction', async () => {
    const { problems } = await problemsOf({ 'task.yaml': 'metadata: {}\n', ...TESTS_ONLY });
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'instruction',
        message: 'required: expected the instruction text, or an instruction.md beside task.yaml',
      }),
    ]);
  });

  it('refuses an instruction given both inline and in instruction.md', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\n',
      'instruction.md': 'y\n',
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([
      expect.objectContaining({ path: 'instruction', message: expect.stringContaining('exactly one') }),
    ]);
  });

  it('refuses a verifier with no tests/ and no command', async () => {
    const { problems } = await problemsOf({ 'task.yaml': 'instruction: x\n' });
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'verifier',
        message:
          'no verifier: expected tests/test.sh in the task folder, a verifier.command, or verifier: false',
      }),
    ]);
  });

  it('refuses a tests/ folder without test.sh when no command is given', async () => {
    const { problems } = await problemsOf({ 'task.yaml': 'instruction: x\n', 'tests/check.py': '' });
    expect(problems).toEqual([expect.objectContaining({ path: 'verifier.command' })]);
  });

  it('refuses references to files that do not exist, each with its path', async () => {
    const { file, problems } = await problemsOf({
      'task.yaml': `
instruction: x
environment:
  dockerfile: env/Dockerfile
  files: [{ from: data/, to: /data }]
solution: solution/run.sh
dataset: { file: rows.jsonl }
`,
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([
      { file, path: 'environment.dockerfile', message: '"env/Dockerfile" does not exist in the task folder' },
      { file, path: 'environment.files.0.from', message: '"data/" does not exist in the task folder' },
      { file, path: 'solution', message: '"solution/run.sh" does not exist in the task folder' },
      { file, path: 'dataset.file', message: '"rows.jsonl" does not exist in the task folder' },
    ]);
  });

  it('refuses an image and a Dockerfile together', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\nenvironment: { image: a, dockerfile: Dockerfile }\n',
      Dockerfile: '',
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'environment.dockerfile',
        message: expect.stringContaining('not both'),
      }),
    ]);
  });

  it('refuses sandbox tools for a task without a sandbox', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\nenvironment: false\nverifier: false\ntools: [bash, submit]\n',
    });
    expect(problems).toEqual([
      expect.objectContaining({ path: 'tools', message: 'bash needs a sandbox, but environment is false' }),
    ]);
  });

  it('names the line of a YAML syntax error', async () => {
    const { file, problems } = await problemsOf({
      'task.yaml': 'instruction: x\nlimits:\n  max_turns: [1,\n',
    });
    expect(problems[0]).toMatchObject({ file, line: 4, path: '' });
    expect(problems[0]?.message).toMatch(/^YAML syntax error: /);
  });

  it('refuses duplicate keys as a syntax error with their line', async () => {
    const { problems } = await problemsOf({ 'task.yaml': 'instruction: x\ninstruction: y\n' });
    expect(problems[0]).toMatchObject({ line: 2, message: expect.stringContaining('unique') });
  });

  it('refuses a file that is not a mapping', async () => {
    const { problems } = await problemsOf({ 'task.yaml': '- a\n- b\n' });
    expect(problems).toEqual([
      expect.objectContaining({ path: '', message: expect.stringContaining('expected a mapping') }),
    ]);
  });

  it('reports every schema problem of a file at once', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: 3\nlimits: { max_turns: 0 }\ntools: bash\nextra: 1\n',
      ...TESTS_ONLY,
    });
    expect(problems.map((p) => p.path).sort()).toEqual(['extra', 'instruction', 'limits.max_turns', 'tools']);
  });
});

describe('plug-in sections', () => {
  const browser = z.strictObject({ start_url: z.string().url() });

  it('validates a registered section and stores it in extensions', async () => {
    const { task } = await loadOne(
      { 'task.yaml': 'instruction: x\nbrowser: { start_url: "http://127.0.0.1:8080/" }\n', ...TESTS_ONLY },
      { extensions: { browser } },
    );
    expect(task.extensions).toEqual({ browser: { start_url: 'http://127.0.0.1:8080/' } });
  });

  it('leaves extensions empty when a registered section is absent', async () => {
    const { task } = await loadOne(
      { 'task.yaml': 'instruction: x\n', ...TESTS_ONLY },
      { extensions: { browser } },
    );
    expect(task.extensions).toEqual({});
  });

  it('reports a bad registered section with its path', async () => {
    const { problems } = await problemsOf(
      { 'task.yaml': 'instruction: x\nbrowser: { start_url: 5, other: 1 }\n', ...TESTS_ONLY },
      { extensions: { browser } },
    );
    expect(problems.map((p) => p.path).sort()).toEqual(['browser.other', 'browser.start_url']);
  });

  it('refuses an extension that would shadow a built-in field', async () => {
    const dir = await writeTree({ 'task.yaml': 'instruction: x\n', ...TESTS_ONLY });
    const error = await rejection(loadTasks(dir, { extensions: { limits: z.unknown() } }));
    expect(error.code).toBe('CONFIG_INVALID');
  });
});

describe('verifier isolation', () => {
  it('leaves isolation out by default and for isolation: none (the verifier runs in the agent sandbox)', async () => {
    const { task } = await loadOne({ 'task.yaml': 'instruction: x\n', ...TESTS_ONLY });
    expect(task.verifier?.isolation).toBeUndefined();
    const { task: none } = await loadOne({
      'task.yaml': 'instruction: x\nverifier: { isolation: none }\n',
      ...TESTS_ONLY,
    });
    expect(none.verifier?.isolation).toBeUndefined();
  });

  it('reads isolation: container, with the workdir copied by default or the copy paths given', async () => {
    const { task } = await loadOne({
      'task.yaml': 'instruction: x\nverifier: { isolation: container }\n',
      ...TESTS_ONLY,
    });
    expect(task.verifier?.isolation).toEqual({ kind: 'container' });
    const { task: listed } = await loadOne({
      'task.yaml': 'instruction: x\nverifier: { isolation: container, copy: [/app, /data/out.csv] }\n',
      ...TESTS_ONLY,
    });
    expect(listed.verifier?.isolation).toEqual({ kind: 'container', copy: ['/app', '/data/out.csv'] });
  });

  it('refuses copy without isolation: container, with the file and the field path', async () => {
    const { file, problems } = await problemsOf({
      'task.yaml': 'instruction: x\nverifier: { copy: [/app] }\n',
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([
      expect.objectContaining({
        file,
        path: 'verifier.copy',
        message: expect.stringContaining('copy needs isolation: container'),
      }),
    ]);
  });

  it.each([
    ['a relative path', '[app]', 'verifier.copy.0', 'absolute path'],
    ['/ itself', '[/app, /]', 'verifier.copy.1', 'below /'],
    ['an empty list', '[]', 'verifier.copy', 'non-empty list'],
    ['a string', '/app', 'verifier.copy', 'list of absolute paths'],
  ])('refuses %s in copy', async (_name, copy, path, message) => {
    const { problems } = await problemsOf({
      'task.yaml': `instruction: x\nverifier: { isolation: container, copy: ${copy} }\n`,
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([expect.objectContaining({ path, message: expect.stringContaining(message) })]);
  });

  it('refuses an unknown isolation', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\nverifier: { isolation: vm }\n',
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'verifier.isolation',
        message: 'expected "none" or "container", got "vm"',
      }),
    ]);
  });

  it('refuses the default copy when the workdir is /', async () => {
    const { problems } = await problemsOf({
      'task.yaml': 'instruction: x\nenvironment: { workdir: / }\nverifier: { isolation: container }\n',
      ...TESTS_ONLY,
    });
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'verifier.copy',
        message: expect.stringContaining('the workdir is /'),
      }),
    ]);
  });
});
