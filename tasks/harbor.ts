/**
 * Harbor task folders (Terminal-Bench 2.x): `task.toml`, `instruction.md`,
 * `environment/Dockerfile` (or `[environment] docker_image`), `tests/test.sh`, optional
 * `solution/solve.sh`. Lenient where Harbor is free-form (`[metadata]`, `[task]`, version
 * keys, tables we do not read); the values paddock uses are type-checked. What this version
 * cannot run is refused with the file named. Multi-step tasks (`[[steps]]`) and
 * `artifacts`: tasks/harbor-steps.ts.
 */
import path from 'node:path';
import { z } from 'zod';
import { taskPathsOf, type EnvironmentSpec, type SolutionSpec, type Task } from '../harness/task.ts';
import {
  ALL_TOOLS,
  DEFAULT_LIMITS,
  DEFAULT_REWARD_RANGE,
  HARBOR_DEFAULT_MAX_TURNS,
  TIME_LIMIT_EXPECTED,
  isTimeLimitSec,
  DEFAULT_RESOURCES,
  DEFAULT_VERIFIER_COMMAND,
  AGENT_LOG_DIR,
  ARTIFACTS_DIR,
  REWARD_DIR,
  SOLUTION_DIR,
  TESTS_DIR,
  secondsToMs,
  verifierConventions,
} from './defaults.ts';
import { resolveEnvTable, type HostEnvAccess } from './env.ts';
import { parseTomlText, parseYamlText, readText } from './files.ts';
import { loadHarborSteps } from './harbor-steps.ts';
import { loadHarborCompose } from './harbor-compose.ts';
import { taskPath } from './paths.ts';
import {
  expecting,
  taskFileErrorMap,
  timeLimitSeconds,
  zodIssuesToProblems,
  type TaskProblem,
} from './problems.ts';

/** Harbor's default memory limit, in MiB (its `memory_mb` default). */
export const HARBOR_DEFAULT_MEMORY_MB = 2048;
/** Harbor's default limits of the agent and of the verifier, in ms. */
export const HARBOR_DEFAULT_TIMEOUT_MS = 600_000;

const seconds = timeLimitSeconds(TIME_LIMIT_EXPECTED, isTimeLimitSec);
const rewardBound = z
  .number({ error: expecting('a finite number') })
  .refine(Number.isFinite, { error: expecting('a finite number') });
/** `reward_range = [min, max]` (a paddock extension of `[verifier]`). */
const rewardRange = z
  .tuple([rewardBound, rewardBound], { error: expecting('[min, max]: two finite numbers') })
  .refine(([min, max]) => min < max, { error: 'expected [min, max] with min < max' });
const positiveInteger = z
  .number({ error: expecting('a positive integer') })
  .int({ error: expecting('a positive integer') })
  .positive({ error: expecting('a positive integer') });
/** Harbor's `user`: a name or a uid. */
const harborUser = z
  .union([z.string().min(1), z.number().int().min(0)], { error: expecting('a user name or uid') })
  .transform(String);
/** Harbor's NetworkMode (`src/harbor/models/task/config.py`). */
const networkMode = z.enum(['public', 'no-network', 'allowlist'], {
  error: expecting('"public", "no-network" or "allowlist"'),
});
const EnvTableSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]), {
  error: expecting('a table of variable names to values'),
});

/** The parts of `task.toml` paddock reads. Everything else passes (lenient, as Harbor is). */
export const HarborTaskTomlSchema = z.looseObject({
  metadata: z.record(z.string(), z.unknown(), { error: expecting('a table') }).optional(),
  task: z.record(z.string(), z.unknown(), { error: expecting('a table') }).optional(),
  verifier: z
    .looseObject({
      timeout_sec: seconds.optional(),
      env: EnvTableSchema.optional(),
      reward_range: rewardRange.optional(),
      user: harborUser.optional(),
      network_mode: networkMode.optional(),
      allowed_hosts: z.array(z.string()).optional(),
    })
    .optional(),
  /** `max_turns` is a paddock extension (Harbor ignores it): the agent's turn limit, default none. */
  agent: z
    .looseObject({
      timeout_sec: seconds.optional(),
      max_turns: positiveInteger.optional(),
      user: harborUser.optional(),
      network_mode: networkMode.optional(),
      allowed_hosts: z.array(z.string()).optional(),
    })
    .optional(),
  environment: z
    .looseObject({
      build_timeout_sec: seconds.optional(),
      docker_image: z
        .string({ error: expecting('an image name') })
        .min(1)
        .optional(),
      cpus: z
        .number({ error: expecting('a positive number') })
        .positive({ error: expecting('a positive number') })
        .optional(),
      memory_mb: positiveInteger.optional(),
      storage_mb: positiveInteger.optional(),
      /** Older folders write sizes as strings: `memory = "2G"`. */
      memory: z.string({ error: expecting('a size such as "2G"') }).optional(),
      storage: z.string({ error: expecting('a size such as "10G"') }).optional(),
      allow_internet: z.boolean({ error: expecting('true or false') }).optional(),
      network_mode: networkMode.optional(),
      allowed_hosts: z.array(z.string({ error: expecting('a host name') })).optional(),
      /** A paddock extension (Harbor never sets it): the container's no-new-privileges. */
      no_new_privileges: z.boolean({ error: expecting('true or false') }).optional(),
      gpus: z
        .number({ error: expecting('a number of GPUs') })
        .min(0)
        .optional(),
      os: z.string({ error: expecting('an OS name') }).optional(),
      skills_dir: z.string({ error: expecting('a path') }).optional(),
      workdir: z
        .string({ error: expecting('an absolute path') })
        .regex(/^\//, { error: expecting('an absolute path') })
        .optional(),
      env: EnvTableSchema.optional(),
      /** Run in the sandbox before the agent starts (Harbor's `run_healthcheck`). */
      healthcheck: z
        .looseObject({
          // Required by Harbor; checked in harborEnvironment so that other faults show first.
          command: z
            .string({ error: expecting('a shell command') })
            .min(1)
            .optional(),
          retries: z
            .number({ error: expecting('a non-negative integer') })
            .int()
            .min(0)
            .optional(),
          interval_sec: seconds.optional(),
          timeout_sec: seconds.optional(),
          start_period_sec: seconds.optional(),
          start_interval_sec: seconds.optional(),
        })
        .optional(),
      mcp_servers: z
        .array(z.record(z.string(), z.unknown()), { error: expecting('an array of tables') })
        .optional(),
    })
    .optional(),
  solution: z.looseObject({ env: EnvTableSchema.optional() }).optional(),
});

/** A size such as `2G`, `512M`, `2048` (MiB) in MiB; undefined when it is not one. */
export function sizeToMb(size: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$/i.exec(size);
  if (!match) return undefined;
  const factor = { '': 1, K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024 }[(match[2] ?? '').toUpperCase()] ?? 1;
  return Math.max(1, Math.round(Number(match[1]) * factor));
}

/**
 * Refuses a docker-compose file that declares services other than the allowed ones
 * (sidecars come in a later version). Missing file: nothing to check.
 */
export async function checkCompose(
  dir: string,
  candidates: readonly string[],
  allowed: readonly string[],
): Promise<TaskProblem[]> {
  for (const candidate of candidates) {
    const file = path.join(dir, candidate);
    const refused: TaskProblem[] = [];
    const found = await taskPath(dir, candidate, 'file', { file, field: '' }, (p) => refused.push(p), {
      required: false,
    });
    if (refused.length > 0) return refused;
    if (found === undefined) continue;
    const read = await readText(found.path);
    if (!read.ok) return read.problems;
    const parsed = parseYamlText(file, read.text);
    if (!parsed.ok) return parsed.problems;
    const services = (parsed.value as { services?: unknown } | null)?.services;
    if (services === null || typeof services !== 'object' || Array.isArray(services)) return [];
    const extra = Object.keys(services).filter((name) => !allowed.includes(name));
    if (extra.length > 0) {
      return [
        {
          file,
          path: 'services',
          message: `services besides ${allowed.map((name) => `"${name}"`).join(' / ')} (${extra.join(', ')}) are not supported yet: this version runs single-container tasks only`,
        },
      ];
    }
  }
  return [];
}

/**
 * The `[environment]` mapping that goes beyond resources: network (Harbor's default is
 * public), `[agent] user`, the compose file's sidecars, ENTRYPOINT, healthcheck, build
 * timeout, no-new-privileges and a warning for each field not honoured. Problems are
 * reported through `report`, naming the file and field.
 */
async function harborEnvironment(
  dir: string,
  file: string,
  config: z.infer<typeof HarborTaskTomlSchema>,
  environmentEnv: Record<string, string>,
  memoryMb: number | undefined,
  report: (problem: TaskProblem) => void,
): Promise<
  Omit<EnvironmentSpec, 'image' | 'build' | 'cpus' | 'memoryMb' | 'pids' | 'storageMb' | 'workdir'>
> {
  const env = config.environment ?? {};
  const problem = (where: string, message: string) => report({ file, path: where, message });
  const warnings: string[] = [];

  // Network: Harbor's resolve_baseline — network_mode wins, else allow_internet (default true).
  const baseline = env.network_mode ?? (env.allow_internet === false ? 'no-network' : 'public');
  if (env.network_mode !== undefined && env.allow_internet !== undefined) {
    const implied = env.allow_internet ? 'public' : 'no-network';
    if (implied !== env.network_mode)
      warnings.push(
        `[environment] network_mode = "${env.network_mode}" overrides allow_internet = ${env.allow_internet}`,
      );
  }
  if (baseline === 'allowlist' || (env.allowed_hosts?.length ?? 0) > 0) {
    problem(
      'environment.network_mode',
      'allowlist network policies (allowed_hosts) are not supported: use "public" or "no-network"',
    );
  }
  for (const phase of ['agent', 'verifier'] as const) {
    const table = config[phase];
    const mode = table?.network_mode ?? ((table?.allowed_hosts?.length ?? 0) > 0 ? 'allowlist' : undefined);
    if (mode !== undefined && mode !== baseline) {
      problem(
        `${phase}.network_mode`,
        `a per-phase network policy ("${mode}" while the environment is "${baseline}") is not supported: set [environment] network_mode for the whole episode`,
      );
    }
  }

  if (env.healthcheck && env.healthcheck.command === undefined)
    problem('environment.healthcheck.command', 'expected a shell command, got nothing');
  const healthcheck = env.healthcheck?.command
    ? {
        command: env.healthcheck.command,
        // Harbor's HealthcheckConfig defaults.
        intervalMs: secondsToMs(env.healthcheck.interval_sec ?? 5),
        timeoutMs: secondsToMs(env.healthcheck.timeout_sec ?? 30),
        startPeriodMs:
          env.healthcheck.start_period_sec !== undefined ? secondsToMs(env.healthcheck.start_period_sec) : 0,
        startIntervalMs: secondsToMs(env.healthcheck.start_interval_sec ?? 5),
        retries: env.healthcheck.retries ?? 3,
      }
    : undefined;

  if ((env.gpus ?? 0) > 0)
    warnings.push(`[environment] gpus = ${env.gpus}: not honoured, the sandbox gets no GPU`);
  if (env.gpu_types !== undefined)
    warnings.push('[environment] gpu_types: not honoured, the sandbox gets no GPU');
  if (env.os !== undefined && env.os.toLowerCase() !== 'linux')
    warnings.push(`[environment] os = "${env.os}": not honoured, sandboxes are Linux containers`);
  if (env.skills_dir !== undefined)
    warnings.push(
      `[environment] skills_dir = "${env.skills_dir}": not honoured, no agent skills are installed`,
    );

  // Harbor interpolates its compose files with the task's env and its own variables.
  const composeVars: Record<string, string> = {
    ...environmentEnv,
    CPUS: String(env.cpus ?? DEFAULT_RESOURCES.cpus),
    MEMORY: `${memoryMb ?? HARBOR_DEFAULT_MEMORY_MB}M`,
    ENV_VERIFIER_LOGS_PATH: REWARD_DIR,
    ENV_AGENT_LOGS_PATH: AGENT_LOG_DIR,
    ENV_ARTIFACTS_PATH: ARTIFACTS_DIR,
  };
  const loaded = await loadHarborCompose(dir, composeVars);
  loaded.problems.forEach(report);
  const compose = loaded.compose;
  if (compose) warnings.push(...compose.warnings);

  return {
    network: baseline === 'public',
    ...(config.agent?.user !== undefined ? { user: config.agent.user } : {}),
    env: { ...environmentEnv, ...(compose?.env ?? {}) },
    files: compose?.files ?? [],
    ...(compose && compose.services.length > 0 ? { services: compose.services } : {}),
    ...(compose && compose.volumes.length > 0 ? { volumes: compose.volumes } : {}),
    keepEntrypoint: true,
    ...(healthcheck ? { healthcheck } : {}),
    ...(env.build_timeout_sec !== undefined ? { buildTimeoutMs: secondsToMs(env.build_timeout_sec) } : {}),
    noNewPrivileges: env.no_new_privileges ?? false,
    ...(warnings.length > 0 ? { warnings } : {}),
  };
}

/** Loads one Harbor task folder. */
export async function loadHarborTask(source: {
  dir: string;
  file: string;
  idPrefix: string;
  /** Host variables and which of them `${NAME}` templates may read. */
  env: HostEnvAccess;
  /** The registered plug-in sections: `mcp_servers` tables are checked for the paths they name. */
  extensions?: Readonly<Record<string, z.ZodType>>;
}): Promise<{ tasks: Task[]; problems: TaskProblem[] }> {
  const { dir, file } = source;
  const read = await readText(file);
  if (!read.ok) return { tasks: [], problems: read.problems };
  const toml = parseTomlText(file, read.text);
  if (!toml.ok) return { tasks: [], problems: toml.problems };

  const problems: TaskProblem[] = [];
  const problem = (where: string, message: string) => problems.push({ file, path: where, message });
  const report = (found: TaskProblem) => problems.push(found);
  /**
   * A path of the folder's layout (instruction.md, environment/, tests/, solution/): its
   * resolved path, `undefined` when absent (reported when `required`), `null` when refused
   * because it leads outside the folder (reported, naming the path itself).
   */
  const layout = async (relative: string, want: 'file' | 'dir') => {
    const before = problems.length;
    const found = await taskPath(dir, relative, want, { file: path.join(dir, relative), field: '' }, report, {
      required: false,
    });
    return found ? found.path : problems.length > before ? null : undefined;
  };

  // Multi-step tasks (tasks/harbor-steps.ts) have an instruction and tests per step.
  const multiStep = toml.value.steps !== undefined;
  const parsed = HarborTaskTomlSchema.safeParse(toml.value, { error: taskFileErrorMap });
  if (!parsed.success) {
    problems.push(...zodIssuesToProblems(parsed.error.issues, file, HarborTaskTomlSchema));
    return { tasks: [], problems };
  }
  const config = parsed.data;
  const env = config.environment ?? {};

  let instruction = '';
  const instructionFile = path.join(dir, 'instruction.md');
  const instructionPath = await layout('instruction.md', 'file');
  const instructionText =
    typeof instructionPath === 'string' ? await readText(instructionPath) : instructionPath;
  if (instructionText === null) {
    // Refused above: it leads outside the task folder.
  } else if (instructionText === undefined) {
    if (!multiStep)
      problems.push({
        file: instructionFile,
        path: '',
        message: 'missing: a Harbor task needs instruction.md',
      });
  } else if (!instructionText.ok) {
    problems.push(...instructionText.problems.map((found) => ({ ...found, file: instructionFile })));
  } else if (instructionText.text.trim() === '') {
    problems.push({ file: instructionFile, path: '', message: 'the instruction is empty' });
  } else {
    instruction = instructionText.text.trimEnd();
  }

  let image: string | undefined;
  let build: EnvironmentSpec['build'];
  if (env.docker_image !== undefined) {
    image = env.docker_image;
  } else {
    const dockerfile = await layout('environment/Dockerfile', 'file');
    // The whole build context must stay inside the task folder.
    const context = dockerfile ? await layout('environment', 'dir') : undefined;
    if (context) build = { contextDir: context, dockerfile: 'Dockerfile' };
    else if (dockerfile === undefined)
      problem('environment', 'no environment: expected environment/Dockerfile or [environment] docker_image');
  }

  const memoryMb =
    env.memory_mb ?? (env.memory !== undefined ? sizeToMb(env.memory) : HARBOR_DEFAULT_MEMORY_MB);
  if (memoryMb === undefined)
    problem('environment.memory', `expected a size such as "2G", got "${env.memory}"`);
  const storageMb = env.storage_mb ?? (env.storage !== undefined ? sizeToMb(env.storage) : undefined);
  if (env.storage !== undefined && storageMb === undefined) {
    problem('environment.storage', `expected a size such as "10G", got "${env.storage}"`);
  }

  const testsDir = await layout('tests', 'dir');
  const testScript = testsDir ? await layout('tests/test.sh', 'file') : testsDir;
  if (testScript === undefined && !multiStep) {
    problems.push({
      file: path.join(dir, 'tests', 'test.sh'),
      path: '',
      message: 'missing: a Harbor task is verified by tests/test.sh',
    });
  }

  const environmentEnv = resolveEnvTable(env.env, source.env, file, 'environment.env', report);
  const verifierEnv = resolveEnvTable(config.verifier?.env, source.env, file, 'verifier.env', report);
  const solutionEnv = resolveEnvTable(config.solution?.env, source.env, file, 'solution.env', report);

  let solution: SolutionSpec | undefined;
  const solutionDir = (await layout('solution/solve.sh', 'file'))
    ? await layout('solution', 'dir')
    : undefined;
  if (solutionDir) {
    solution = {
      kind: 'script',
      files: [{ hostPath: solutionDir, sandboxPath: SOLUTION_DIR }],
      command: `bash ${SOLUTION_DIR}/solve.sh`,
      env: solutionEnv,
    };
  }

  // Paths the MCP tables name obey the same rule as the folder's own (the plug-in reports
  // any other fault of the tables when it reads them).
  const mcpSchema = source.extensions?.mcp_servers;
  const mcpLister = mcpSchema ? taskPathsOf(mcpSchema) : undefined;
  if (mcpSchema && mcpLister && env.mcp_servers !== undefined) {
    const parsedMcp = mcpSchema.safeParse(env.mcp_servers);
    for (const ref of parsedMcp.success ? mcpLister(parsedMcp.data) : []) {
      await taskPath(
        dir,
        ref.path,
        ref.kind ?? 'any',
        { file, field: `environment.mcp_servers.${ref.field}` },
        report,
        { required: ref.optional !== true },
      );
    }
  }

  const environment = await harborEnvironment(dir, file, config, environmentEnv, memoryMb, report);

  const steps = await loadHarborSteps(
    toml.value,
    { dir, file, env: source.env, hasTestScript: typeof testScript === 'string', solutionEnv },
    report,
  );

  if (problems.length > 0 || (!testsDir && !multiStep)) return { tasks: [], problems };

  const { metadata, task: taskTable } = config;
  const harbor = Object.fromEntries(
    Object.entries({
      version: toml.value.version,
      schema_version: toml.value.schema_version,
      build_timeout_sec: env.build_timeout_sec,
      gpus: env.gpus,
      os: env.os,
      healthcheck: env.healthcheck,
      skills_dir: env.skills_dir,
    }).filter(([, value]) => value !== undefined),
  );

  const task: Task = {
    id: source.idPrefix + path.basename(dir),
    dir,
    format: 'harbor',
    instruction,
    environment: {
      ...(image !== undefined ? { image } : {}),
      ...(build !== undefined ? { build } : {}),
      cpus: env.cpus ?? DEFAULT_RESOURCES.cpus,
      memoryMb: memoryMb ?? HARBOR_DEFAULT_MEMORY_MB,
      pids: DEFAULT_RESOURCES.pids,
      ...(storageMb !== undefined ? { storageMb } : {}),
      ...(env.workdir !== undefined ? { workdir: env.workdir } : {}),
      ...environment,
    },
    tools: [...ALL_TOOLS],
    limits: {
      ...DEFAULT_LIMITS,
      maxTurns: config.agent?.max_turns ?? HARBOR_DEFAULT_MAX_TURNS,
      timeoutMs:
        config.agent?.timeout_sec !== undefined
          ? secondsToMs(config.agent.timeout_sec)
          : HARBOR_DEFAULT_TIMEOUT_MS,
    },
    verifier: {
      files: testsDir ? [{ hostPath: testsDir, sandboxPath: TESTS_DIR }] : [],
      command: DEFAULT_VERIFIER_COMMAND,
      env: verifierEnv,
      timeoutMs:
        config.verifier?.timeout_sec !== undefined
          ? secondsToMs(config.verifier.timeout_sec)
          : HARBOR_DEFAULT_TIMEOUT_MS,
      // Harbor's default (None) is the image's USER: '' runs the verifier as the sandbox's own
      // user (the image's USER, or [agent] user when that is set).
      user: config.verifier?.user ?? '',
      reward: { kind: 'files', dir: REWARD_DIR },
      ...verifierConventions(),
      rewardRange: config.verifier?.reward_range
        ? [config.verifier.reward_range[0], config.verifier.reward_range[1]]
        : [...DEFAULT_REWARD_RANGE],
    },
    ...(solution ? { solution } : {}),
    metadata: {
      ...(metadata ?? {}),
      ...(taskTable !== undefined ? { task: taskTable } : {}),
      ...(Object.keys(harbor).length > 0 ? { harbor } : {}),
    },
    extensions: env.mcp_servers !== undefined ? { mcp_servers: env.mcp_servers } : {},
    ...(steps.artifacts.length > 0 ? { artifacts: steps.artifacts } : {}),
  };
  steps.apply?.(task);
  return { tasks: [task], problems: [] };
}
