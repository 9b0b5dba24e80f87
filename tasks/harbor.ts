/**
 * Harbor task folders (Terminal-Bench 2.x): `task.toml`, `instruction.md`,
 * `environment/Dockerfile` (or `[environment] docker_image`), `tests/test.sh`, optional
 * `solution/solve.sh`. Lenient where Harbor is free-form (`[metadata]`, `[task]`, version
 * keys, tables we do not read); the values paddock uses are type-checked. What this version
 * cannot run (multi-step `[[steps]]`, sidecar services) is refused with the file named.
 */
import path from 'node:path';
import { z } from 'zod';
import type { EnvironmentSpec, SolutionSpec, Task } from '../harness/task.ts';
import {
  ALL_TOOLS,
  DEFAULT_LIMITS,
  DEFAULT_RESOURCES,
  DEFAULT_VERIFIER_COMMAND,
  REWARD_DIR,
  SOLUTION_DIR,
  TESTS_DIR,
  secondsToMs,
} from './defaults.ts';
import { kindOf, parseTomlText, parseYamlText, readText } from './files.ts';
import { describeValue, taskFileErrorMap, zodIssuesToProblems, type TaskProblem } from './problems.ts';

/** Harbor's default memory limit, in MiB (its `memory_mb` default). */
export const HARBOR_DEFAULT_MEMORY_MB = 2048;
/** Harbor's default limits of the agent and of the verifier, in ms. */
export const HARBOR_DEFAULT_TIMEOUT_MS = 600_000;

const expecting =
  (what: string) =>
  (issue: { input?: unknown }): string =>
    `expected ${what}, got ${describeValue(issue.input)}`;

const seconds = z
  .number({ error: expecting('a number of seconds') })
  .positive({ error: expecting('a positive number of seconds') });
const positiveInteger = z
  .number({ error: expecting('a positive integer') })
  .int({ error: expecting('a positive integer') })
  .positive({ error: expecting('a positive integer') });
const EnvTableSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]), {
  error: expecting('a table of variable names to values'),
});

/** The parts of `task.toml` paddock reads. Everything else passes (lenient, as Harbor is). */
export const HarborTaskTomlSchema = z.looseObject({
  metadata: z.record(z.string(), z.unknown(), { error: expecting('a table') }).optional(),
  task: z.record(z.string(), z.unknown(), { error: expecting('a table') }).optional(),
  verifier: z.looseObject({ timeout_sec: seconds.optional(), env: EnvTableSchema.optional() }).optional(),
  agent: z.looseObject({ timeout_sec: seconds.optional() }).optional(),
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
      workdir: z
        .string({ error: expecting('an absolute path') })
        .regex(/^\//, { error: expecting('an absolute path') })
        .optional(),
      env: EnvTableSchema.optional(),
      mcp_servers: z
        .array(z.record(z.string(), z.unknown()), { error: expecting('an array of tables') })
        .optional(),
    })
    .optional(),
  solution: z.looseObject({ env: EnvTableSchema.optional() }).optional(),
});

type EnvTable = Record<string, string | number | boolean>;

/** `${VAR}` and `${VAR:-default}`: host variables in Harbor env tables. */
const HOST_VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Fills `${HOST_VAR}` (and `${HOST_VAR:-default}`) in env values from `hostEnv`. A host
 * variable that is not set (and has no default) is a problem naming it.
 */
export function interpolateEnv(
  env: EnvTable | undefined,
  hostEnv: Readonly<Record<string, string | undefined>>,
  where: string,
  report: (where: string, message: string) => void,
): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(env ?? {})) {
    result[key] = String(value).replace(HOST_VAR, (whole, name: string, fallback: string | undefined) => {
      const hostValue = hostEnv[name];
      if (hostValue !== undefined) return hostValue;
      if (fallback !== undefined) return fallback;
      report(`${where}.${key}`, `host environment variable ${name} is not set (used as \${${name}})`);
      return whole;
    });
  }
  return result;
}

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
  candidates: readonly string[],
  allowed: readonly string[],
): Promise<TaskProblem[]> {
  for (const file of candidates) {
    if ((await kindOf(file)) !== 'file') continue;
    const read = await readText(file);
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

/** Loads one Harbor task folder. */
export async function loadHarborTask(source: {
  dir: string;
  file: string;
  idPrefix: string;
  hostEnv: Readonly<Record<string, string | undefined>>;
}): Promise<{ tasks: Task[]; problems: TaskProblem[] }> {
  const { dir, file } = source;
  const read = await readText(file);
  if (!read.ok) return { tasks: [], problems: read.problems };
  const toml = parseTomlText(file, read.text);
  if (!toml.ok) return { tasks: [], problems: toml.problems };

  const problems: TaskProblem[] = [];
  const problem = (where: string, message: string) => problems.push({ file, path: where, message });

  if (toml.value.steps !== undefined || (await kindOf(path.join(dir, 'steps'))) === 'dir') {
    problem(
      'steps',
      'multi-step tasks ([[steps]]) are not supported yet: this version runs single-step tasks only',
    );
  }
  problems.push(
    ...(await checkCompose(
      [
        path.join(dir, 'environment', 'docker-compose.yaml'),
        path.join(dir, 'environment', 'docker-compose.yml'),
      ],
      ['main'],
    )),
  );

  const parsed = HarborTaskTomlSchema.safeParse(toml.value, { error: taskFileErrorMap });
  if (!parsed.success) {
    problems.push(...zodIssuesToProblems(parsed.error.issues, file, HarborTaskTomlSchema));
    return { tasks: [], problems };
  }
  const config = parsed.data;
  const env = config.environment ?? {};

  let instruction = '';
  const instructionFile = path.join(dir, 'instruction.md');
  const instructionText =
    (await kindOf(instructionFile)) === 'file' ? await readText(instructionFile) : undefined;
  if (instructionText === undefined) {
    problems.push({
      file: instructionFile,
      path: '',
      message: 'missing: a Harbor task needs instruction.md',
    });
  } else if (!instructionText.ok) {
    problems.push(...instructionText.problems);
  } else if (instructionText.text.trim() === '') {
    problems.push({ file: instructionFile, path: '', message: 'the instruction is empty' });
  } else {
    instruction = instructionText.text.trimEnd();
  }

  let image: string | undefined;
  let build: EnvironmentSpec['build'];
  if (env.docker_image !== undefined) {
    image = env.docker_image;
  } else if ((await kindOf(path.join(dir, 'environment', 'Dockerfile'))) === 'file') {
    build = { contextDir: path.join(dir, 'environment'), dockerfile: 'Dockerfile' };
  } else {
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

  const testsDir = path.join(dir, 'tests');
  if ((await kindOf(path.join(testsDir, 'test.sh'))) !== 'file') {
    problems.push({
      file: path.join(testsDir, 'test.sh'),
      path: '',
      message: 'missing: a Harbor task is verified by tests/test.sh',
    });
  }

  const environmentEnv = interpolateEnv(env.env, source.hostEnv, 'environment.env', problem);
  const verifierEnv = interpolateEnv(config.verifier?.env, source.hostEnv, 'verifier.env', problem);
  const solutionEnv = interpolateEnv(config.solution?.env, source.hostEnv, 'solution.env', problem);

  let solution: SolutionSpec | undefined;
  if ((await kindOf(path.join(dir, 'solution', 'solve.sh'))) === 'file') {
    solution = {
      kind: 'script',
      files: [{ hostPath: path.join(dir, 'solution'), sandboxPath: SOLUTION_DIR }],
      command: `bash ${SOLUTION_DIR}/solve.sh`,
      env: solutionEnv,
    };
  }

  if (problems.length > 0) return { tasks: [], problems };

  const { metadata, task: taskTable } = config;
  const harbor = Object.fromEntries(
    Object.entries({
      version: toml.value.version,
      schema_version: toml.value.schema_version,
      artifacts: toml.value.artifacts,
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
      network: env.allow_internet ?? false,
      ...(env.workdir !== undefined ? { workdir: env.workdir } : {}),
      env: environmentEnv,
      files: [],
    },
    tools: [...ALL_TOOLS],
    limits: {
      ...DEFAULT_LIMITS,
      timeoutMs:
        config.agent?.timeout_sec !== undefined
          ? secondsToMs(config.agent.timeout_sec)
          : HARBOR_DEFAULT_TIMEOUT_MS,
    },
    verifier: {
      files: [{ hostPath: testsDir, sandboxPath: TESTS_DIR }],
      command: DEFAULT_VERIFIER_COMMAND,
      env: verifierEnv,
      timeoutMs:
        config.verifier?.timeout_sec !== undefined
          ? secondsToMs(config.verifier.timeout_sec)
          : HARBOR_DEFAULT_TIMEOUT_MS,
      user: 'root',
      reward: { kind: 'files', dir: REWARD_DIR },
    },
    ...(solution ? { solution } : {}),
    metadata: {
      ...(metadata ?? {}),
      ...(taskTable !== undefined ? { task: taskTable } : {}),
      ...(Object.keys(harbor).length > 0 ? { harbor } : {}),
    },
    extensions: env.mcp_servers !== undefined ? { mcp_servers: env.mcp_servers } : {},
  };
  return { tasks: [task], problems: [] };
}
