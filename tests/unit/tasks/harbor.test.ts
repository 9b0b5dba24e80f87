import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LOG_DIRS, loadTasks, pytestWarnings, validateTasks } from '../../../tasks/index.ts';
import { NO_TURN_LIMIT } from '../../../tasks/defaults.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURES = path.join(ROOT, 'tests', 'fixtures', 'tasks');
const EXAMPLE = path.join(ROOT, 'tasks', 'examples', 'word-frequency');
const fixture = (name: string) => path.join(FIXTURES, name);
const hostEnv = { PADDOCK_FIXTURE_HOST_VAR: 'from-host' };
/** The lenient fixture's templates read these two host variables. */
const allowEnv = ['PADDOCK_FIXTURE_HOST_VAR', 'PADDOCK_FIXTURE_UNSET_VAR'];

describe('Harbor task folders', () => {
  it('maps the example Harbor task onto a Task', async () => {
    const [task] = await loadTasks(EXAMPLE);
    expect(task).toMatchObject({
      id: 'examples/word-frequency',
      dir: EXAMPLE,
      format: 'harbor',
      environment: {
        build: { contextDir: path.join(EXAMPLE, 'environment'), dockerfile: 'Dockerfile' },
        cpus: 1,
        memoryMb: 1024,
        storageMb: 2048,
        network: false,
        workdir: '/app',
        env: {},
        files: [],
      },
      tools: ['bash', 'read_file', 'write_file', 'edit_file', 'submit'],
      // Harbor has no turn limit: only the time limit ends an episode (see tasks/README.md).
      limits: { maxTurns: NO_TURN_LIMIT, timeoutMs: 600_000, commandTimeoutMs: 120_000 },
      verifier: {
        files: [{ hostPath: path.join(EXAMPLE, 'tests'), sandboxPath: '/tests' }],
        command: 'bash /tests/test.sh',
        env: {},
        timeoutMs: 60_000,
        reward: { kind: 'files', dir: '/logs/verifier' },
        rewardRange: [0, 1],
        // Harbor's log folders are the loader's to name, not the harness's.
        logDirs: ['/logs/verifier', '/logs/agent', '/logs/artifacts'],
        keepDir: '/logs/verifier',
        outputWarnings: pytestWarnings,
      },
      solution: {
        kind: 'script',
        files: [{ hostPath: path.join(EXAMPLE, 'solution'), sandboxPath: '/solution' }],
        command: 'bash /solution/solve.sh',
        env: {},
      },
      metadata: {
        difficulty: 'easy',
        tags: ['bash', 'text', 'harbor'],
        harbor: { version: '1.0', build_timeout_sec: 300 },
      },
      extensions: {},
    });
    expect(task?.instruction).toMatch(/^Write an executable script `\/app\/wordfreq.sh`/);
  });

  it('loads a task.toml with free-form metadata and keys it does not read', async () => {
    const { tasks, problems } = await validateTasks(fixture('harbor/lenient'), { hostEnv, allowEnv });
    expect(problems).toEqual([]);
    const task = tasks[0]!;
    expect(task.metadata).toMatchObject({
      difficulty: 'hard',
      expert_time_estimate_min: 12.5,
      nested: { anything: [1, 'two', { three: 3 }] },
      task: { name: 'fixtures/lenient', keywords: ['fixture'] },
      harbor: {
        schema_version: '1.1',
        build_timeout_sec: 900,
        gpus: 0,
        os: 'linux',
      },
    });
  });

  it('maps resources, limits, env tables and MCP servers of task.toml', async () => {
    const [task] = await loadTasks(fixture('harbor/lenient'), { hostEnv, allowEnv });
    expect(task?.environment).toMatchObject({
      cpus: 2,
      memoryMb: 4096,
      storageMb: 10240,
      network: true,
      workdir: '/workspace',
      env: { PLAIN: 'value', FROM_HOST: 'from-host', WITH_DEFAULT: 'fallback' },
    });
    expect(task?.limits.timeoutMs).toBe(1_200_500);
    expect(task?.verifier).toMatchObject({ timeoutMs: 90_000, env: { MODE: 'strict', RETRIES: '3' } });
    expect(task?.solution).toMatchObject({ env: { SOLUTION_MODE: 'fast' } });
    expect(task?.extensions).toEqual({
      mcp_servers: [
        {
          name: 'files',
          transport: 'stdio',
          command: 'npx',
          args: ['-y', '@modelcontextprotocol/server-filesystem', '/workspace'],
        },
      ],
    });
  });

  it("uses [environment] docker_image, Harbor's defaults, and no workdir when none is given", async () => {
    const [task] = await loadTasks(fixture('harbor/prebuilt-image'));
    expect(task?.environment).toEqual({
      image: 'paddock/base:bookworm',
      cpus: 1,
      memoryMb: 2048,
      pids: 256,
      network: true,
      env: {},
      files: [],
      keepEntrypoint: true,
      noNewPrivileges: false,
    });
    expect(task?.solution).toBeUndefined();
    expect(task?.verifier?.timeoutMs).toBe(600_000);
  });

  it('accepts a docker-compose.yaml with only the main service', async () => {
    const { problems } = await validateTasks(fixture('harbor/compose-main-only'));
    expect(problems).toEqual([]);
  });

  it('refuses a multi-step task whose steps have no instructions, naming each missing file', async () => {
    const { tasks, problems } = await validateTasks(fixture('harbor/multi-step'));
    expect(tasks).toEqual([]);
    expect(problems.map((problem) => path.relative(fixture('harbor/multi-step'), problem.file))).toEqual([
      path.join('steps', 'first', 'instruction.md'),
      path.join('steps', 'second', 'instruction.md'),
    ]);
    expect(problems[0]?.message).toContain('step "first" needs steps/first/instruction.md');
  });

  it("loads sidecar services and main's environment from the compose file", async () => {
    const [task] = await loadTasks(fixture('harbor/sidecar'));
    expect(task?.environment?.services).toEqual([
      { name: 'db', image: 'postgres:16', env: {}, volumes: [], binds: [], dependsOn: [] },
    ]);
    expect(task?.environment?.env).toMatchObject({ DB_HOST: 'db' });
  });

  it('refuses wrong types in the values it uses', async () => {
    const dir = fixture('harbor/bad-types');
    const { problems } = await validateTasks(dir);
    expect(problems).toEqual([
      {
        file: path.join(dir, 'task.toml'),
        path: 'verifier.timeout_sec',
        message: 'expected a number of seconds above 0 and at most 2147483.647 (about 24.8 days), got "ten"',
      },
      {
        file: path.join(dir, 'task.toml'),
        path: 'environment.cpus',
        message: 'expected a positive number, got "two"',
      },
      {
        file: path.join(dir, 'task.toml'),
        path: 'environment.allow_internet',
        message: 'expected true or false, got "yes"',
      },
    ]);
  });

  it('names a host variable that is not set', async () => {
    const dir = fixture('harbor/missing-host-var');
    const { problems } = await validateTasks(dir, {
      hostEnv: {},
      allowEnv: ['PADDOCK_FIXTURE_UNSET_VAR'],
    });
    expect(problems).toEqual([
      {
        file: path.join(dir, 'task.toml'),
        path: 'environment.env.TOKEN',
        message:
          'host environment variable PADDOCK_FIXTURE_UNSET_VAR is not set (used as ${PADDOCK_FIXTURE_UNSET_VAR})',
      },
    ]);
  });

  it('names the line of a TOML syntax error', async () => {
    const dir = fixture('harbor/toml-syntax');
    const { problems } = await validateTasks(dir);
    expect(problems).toEqual([
      {
        file: path.join(dir, 'task.toml'),
        line: 4,
        path: '',
        message: expect.stringMatching(/^TOML syntax error/),
      },
    ]);
  });

  it('names the missing instruction.md, tests/test.sh and environment', async () => {
    const dir = fixture('harbor/no-environment');
    const { problems } = await validateTasks(dir);
    expect(problems).toEqual([
      {
        file: path.join(dir, 'instruction.md'),
        path: '',
        message: 'missing: a Harbor task needs instruction.md',
      },
      {
        file: path.join(dir, 'task.toml'),
        path: 'environment',
        message: 'no environment: expected environment/Dockerfile or [environment] docker_image',
      },
    ]);
  });
});

describe('Terminal-Bench 1 folders', () => {
  it('maps task.yaml, Dockerfile, run-tests.sh and solution.sh', async () => {
    const dir = fixture('terminal-bench/hello-file');
    const [task] = await loadTasks(dir);
    expect(task).toEqual({
      id: `${path.basename(path.dirname(dir))}/hello-file`,
      dir,
      format: 'terminal-bench',
      instruction: 'Create /app/hello.txt containing "Hello, world!".',
      environment: {
        build: { contextDir: dir, dockerfile: 'Dockerfile' },
        cpus: 1,
        memoryMb: 1024,
        pids: 256,
        network: false,
        env: {},
        files: [],
      },
      tools: ['bash', 'read_file', 'write_file', 'edit_file', 'submit'],
      limits: { maxTurns: 30, timeoutMs: 180_000, commandTimeoutMs: 120_000 },
      verifier: {
        files: [
          { hostPath: path.join(dir, 'tests'), sandboxPath: '/tests' },
          { hostPath: path.join(dir, 'run-tests.sh'), sandboxPath: '/tests/run-tests.sh' },
        ],
        command: 'bash /tests/run-tests.sh',
        env: { TEST_DIR: '/tests' },
        timeoutMs: 30_000,
        user: 'root',
        reward: expect.objectContaining({ kind: 'reader', name: 'pytest-output' }),
        rewardRange: [0, 1],
        logDirs: [...LOG_DIRS],
        keepDir: '/logs/verifier',
        outputWarnings: pytestWarnings,
      },
      solution: {
        kind: 'script',
        files: [{ hostPath: path.join(dir, 'solution.sh'), sandboxPath: '/solution/solution.sh' }],
        command: 'bash /solution/solution.sh',
        env: {},
      },
      metadata: {
        author_name: 'A. Author',
        author_email: 'author@example.invalid',
        difficulty: 'easy',
        category: 'file-operations',
        tags: ['file-operations'],
        run_tests_in_same_shell: false,
        disable_asciinema: false,
        estimated_duration_sec: 10,
      },
      extensions: {},
    });
  });
});
