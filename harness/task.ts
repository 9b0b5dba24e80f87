/**
 * The Task contract: what one episode is asked to do, where, with which tools, and how
 * it is scored. Task files of any format (paddock's own `task.yaml`, Harbor's
 * `task.toml`, dataset rows) are loaded by `tasks/` into this one shape; the harness
 * never reads task files itself; `checkTaskPath` is the one rule every reader of a path a
 * task file names applies (loaders at load time, plug-ins when they open the file).
 */
import { readdir, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Sandbox } from './sandbox.ts';

/** A file on the host that is copied into a sandbox at a given path. */
export interface FileMount {
  /** Absolute path of the file or folder on the host. */
  hostPath: string;
  /** Absolute path inside the sandbox. Folders are copied recursively. */
  sandboxPath: string;
}

/** Where a task's container image comes from. Exactly one of `image` / `build` is set. */
export interface EnvironmentSpec {
  /** A prebuilt image name, e.g. `paddock/base:bookworm`. */
  image?: string;
  /** A Docker build: context folder on the host and the Dockerfile inside it. */
  build?: { contextDir: string; dockerfile: string };
  /** CPUs the sandbox may use. @default 1 */
  cpus: number;
  /** Memory limit in MiB. @default 1024 */
  memoryMb: number;
  /** Maximum number of processes. @default 256 */
  pids: number;
  /** Disk limit in MiB, where the engine's storage driver supports it; otherwise advisory. */
  storageMb?: number;
  /** Whether the sandbox may reach the network. @default false */
  network: boolean;
  /** Working directory of the agent's commands; `undefined` means the image's WORKDIR. */
  workdir?: string;
  /** User the agent's commands run as; `undefined` means the image's USER. */
  user?: string;
  /** Environment variables set for every command. */
  env: Record<string, string>;
  /** Files copied into the sandbox before the agent starts. */
  files: FileMount[];
  /**
   * Sidecar services (Harbor's `environment/docker-compose.yaml` services besides
   * `main`): containers on a private per-episode network, reachable from the sandbox by
   * service name, started (and healthy, where they have a healthcheck) before the agent,
   * removed with the sandbox. They never run the agent's commands. @default none
   */
  services?: ServiceSpec[];
  /** Named volumes the services and the sandbox share, per episode (compose `volumes:`). */
  volumes?: VolumeMount[];
  /**
   * Keep the image's ENTRYPOINT (Harbor replaces only the command); otherwise the
   * sandbox's keep-alive replaces it. What the entrypoint leaves running in the
   * background is stopped when the sandbox is sealed for verification. @default false
   */
  keepEntrypoint?: boolean;
  /** A readiness check run in the sandbox after it starts and before the agent's first turn. */
  healthcheck?: HealthcheckSpec;
  /** Limit of building the environment's images (Dockerfile and service builds), ms. @default none */
  buildTimeoutMs?: number;
  /**
   * The container's `no-new-privileges`: setuid and file-capability binaries do not gain
   * privileges. @default true
   */
  noNewPrivileges?: boolean;
  /**
   * What of the task file the environment does not honour, one sentence each (a GPU
   * request, an OS, a skills folder…). Recorded with the task and printed once per task.
   */
  warnings?: string[];
}

/** A readiness check: `command` runs until it exits 0 (Harbor's `[environment.healthcheck]`, Docker's HEALTHCHECK). */
export interface HealthcheckSpec {
  /** Run with `sh -c` (main sandbox: the sandbox's shell); exit 0 means ready. */
  command: string;
  /** Between attempts after the start period, ms. @default 5_000 */
  intervalMs: number;
  /** Limit of one attempt, ms. @default 30_000 */
  timeoutMs: number;
  /** Failures during this grace period do not count, ms. @default 0 */
  startPeriodMs: number;
  /** Between attempts during the start period, ms. @default 5_000 */
  startIntervalMs: number;
  /** Consecutive failures (after the start period) that fail the start. @default 3 */
  retries: number;
}

/** A named volume of the episode, mounted at `target` (created empty per episode, removed with it). */
export interface VolumeMount {
  /** The compose volume name. */
  name: string;
  /** Absolute path in the container. */
  target: string;
  readOnly: boolean;
}

/** A host file or folder of the task folder bind-mounted read-only into a service. */
export interface BindMount {
  /** Absolute host path, inside the task folder. */
  hostPath: string;
  /** Absolute path in the container. */
  target: string;
}

/** A sidecar container of the environment (a compose service other than `main`). */
export interface ServiceSpec {
  /** The service name: its host name on the episode's network. */
  name: string;
  /** A prebuilt image (the image map applies). Exactly one of `image` / `build`. */
  image?: string;
  /** A Docker build: context folder on the host and the Dockerfile inside it. */
  build?: { contextDir: string; dockerfile: string };
  /** Replaces the image's ENTRYPOINT. */
  entrypoint?: string[];
  /** Replaces the image's CMD. */
  command?: string[];
  env: Record<string, string>;
  /** Working directory; the image's WORKDIR when absent. */
  workdir?: string;
  /** User of the service's process; the image's USER when absent. */
  user?: string;
  /** Named volumes of the episode. */
  volumes: VolumeMount[];
  /** Read-only binds of task files. */
  binds: BindMount[];
  /**
   * Readiness: Docker's HEALTHCHECK test (`['CMD', …]` or `['CMD-SHELL', '…']`), with
   * times in ms. Absent: the image's own HEALTHCHECK, if any.
   */
  healthcheck?: Omit<HealthcheckSpec, 'command'> & { test: string[] };
  /** Services started (and healthy / completed, per condition) before this one. */
  dependsOn: { service: string; condition: 'started' | 'healthy' | 'completed' }[];
  /** CPUs; the environment's when absent. */
  cpus?: number;
  /** Memory limit, MiB; the environment's when absent. */
  memoryMb?: number;
}

/** How the verifier scores an episode after the agent stops. */
export interface VerifierSpec {
  /** Files and folders uploaded into the sandbox only after the agent has stopped. */
  files: FileMount[];
  /** The command run in the sandbox, e.g. `bash /tests/test.sh`. */
  command: string;
  /** Working directory of the command. @default the environment's workdir */
  cwd?: string;
  /** Extra environment of the command (dataset rows fill these). */
  env: Record<string, string>;
  /** Limit of the verifier command, separate from the agent's limits. */
  timeoutMs: number;
  /**
   * User the verifier runs as; '' is the sandbox's own user (the environment's `user`,
   * else the image's USER), which Harbor tasks get by default. @default 'root'
   */
  user?: string;
  /**
   * Where the reward is read from:
   * - `files`: `<dir>/reward.json` (an object of named scores, or `{reward, …}`) or
   *   `<dir>/reward.txt` (one number); `dir` is emptied and created, writable by every
   *   user, before the command runs;
   * - `exit-code`: 1 when the command exits 0, else 0;
   * - `reader`: what code of the task's format reads after the command (see `RewardReader`).
   */
  reward: { kind: 'files'; dir: string } | { kind: 'exit-code' } | RewardReader;
  /**
   * Absolute folders that must exist, writable by every user (mode 777), when the
   * command starts: the task format's log folders. Created as root; what is in them
   * stays, unless it is also the reward folder, `keepDir` or a reader's `dirs`.
   * @default []
   */
  logDirs?: string[];
  /**
   * The absolute folder whose files are the verifier's own (reports, logs, reward files):
   * emptied and created writable before the command runs, copied to the host afterwards
   * when the episode keeps files (see `KeepFiles`), and removed before a multi-step
   * task's next step. @default the `files` reward's `dir`; none for other reward kinds
   */
  keepDir?: string;
  /**
   * Warnings the task's format reads in the command's output (stdout, a newline, then
   * stderr), e.g. that its test runner refused its arguments and ran no test. They are
   * recorded in `VerifierResult.warnings` and do not change the reward. Must not throw.
   */
  outputWarnings?: (output: string) => string[];
  /**
   * Where the verifier runs. Absent: in the agent's own sandbox (Harbor's way), where an
   * agent that ran as root can have replaced what the verifier relies on (python3,
   * pytest, site-packages). `container`: in a fresh sandbox started from the same
   * environment after the agent stops, with only `copy` taken over from the agent's.
   */
  isolation?: VerifierIsolation;
  /**
   * The range a verifier's reward may take; a reward outside it, or one that is not a
   * finite number, is a verifier error. The task loaders always fill it.
   * @default [0, 1]
   */
  rewardRange?: [min: number, max: number];
}

/**
 * A reward that code of the task's format reads once the verifier's command has ended
 * (a test runner's report or summary, for formats whose verifiers write no reward file).
 * The task's loader builds it; the harness runs it without knowing the format. Not
 * serialisable (it holds functions): a task written to JSON keeps `name` only.
 */
export interface RewardReader {
  kind: 'reader';
  /** Names the reader in records (`VerifierResult.reader`) and messages, e.g. `pytest-output`. */
  name: string;
  /**
   * The command's environment, given the spec's `env` (e.g. the spec's with a flag added
   * to a test runner's options variable). Must not throw. @default the spec's `env`
   */
  env?: (env: Readonly<Record<string, string>>) => Record<string, string>;
  /**
   * Absolute folders the reader reads from: emptied (nothing the agent left there is
   * read) and created, writable by every user, before the command runs; removed before
   * a multi-step task's next step. @default []
   */
  dirs?: string[];
  /**
   * Reads the reward after the command ended (not after it timed out: that is a verifier
   * failure with no reward). A reward that cannot be read is `{ reward: null, error }`;
   * a reward outside the task's `rewardRange` is made a verifier error by the harness.
   * @throws what the sandbox throws when it no longer runs (the episode is then an
   *   infrastructure error), ABORTED.
   */
  read: (context: RewardReadContext) => Promise<RewardRead>;
}

/** What a `RewardReader` reads from. */
export interface RewardReadContext {
  /** The command's output: stdout, a newline, then stderr (each capped at 256 KiB). */
  output: string;
  /** The command's exit status. */
  exitCode: number;
  /** The sealed sandbox the command ran in. */
  sandbox: Sandbox;
  /** Aborted when the episode stops; pass it to every sandbox call. */
  signal: AbortSignal;
}

/** What a `RewardReader` found. */
export interface RewardRead {
  /** The reward; null when none could be read (`error` then says why). */
  reward: number | null;
  /** Why no reward could be read. */
  error?: string;
  /** What the reader saw besides the reward, recorded as `VerifierResult.details` (JSON values only). */
  details?: Record<string, unknown>;
  /** Things worth a look that did not stop scoring, added to `VerifierResult.warnings`. */
  warnings?: string[];
}

/** A verification in a fresh sandbox (see `VerifierSpec.isolation`). */
export interface VerifierIsolation {
  kind: 'container';
  /**
   * Absolute paths (files or folders) copied from the agent's sandbox into the fresh one,
   * replacing what the image has there (modes, owners and symlinks kept). A path missing
   * in the agent's sandbox is removed in the fresh one too and recorded. @default [the environment's workdir]
   */
  copy?: string[];
}

/** One reference action: a tool call the oracle agent makes. */
export interface ReferenceAction {
  tool: string;
  arguments: Record<string, unknown>;
}

/** The task's reference solution, run by the oracle agent. */
export type SolutionSpec =
  /** Files uploaded to `sandboxDir` and a script run there (Harbor's `solution/solve.sh`). */
  | { kind: 'script'; files: FileMount[]; command: string; env: Record<string, string> }
  /** A fixed list of tool calls (browser or MCP tasks). */
  | { kind: 'actions'; actions: ReferenceAction[] };

/** Limits of one episode. Exceeding one ends the episode with status `limit`. */
export interface TaskLimits {
  /** Maximum assistant turns. @default 30 */
  maxTurns: number;
  /** Wall-clock limit of the agent phase (verification excluded), in ms. @default 600_000 */
  timeoutMs: number;
  /** Maximum tokens (prompt + completion) summed over the episode; `undefined` = none. */
  maxTokens?: number;
  /** Maximum model calls (assistant turns that reached the backend); `undefined` = none. */
  maxModelCalls?: number;
  /** Maximum spend in USD, from the agents' `costUsd`; `undefined` = none. */
  maxCostUsd?: number;
  /** Default timeout of one bash tool call, in ms. @default 120_000 */
  commandTimeoutMs: number;
}

/** Which built-in tools the agent gets. Plug-ins (browser, MCP) add their own. */
export type BuiltinToolName = 'bash' | 'read_file' | 'write_file' | 'edit_file' | 'submit';

export interface Task {
  /** Unique id within a run, e.g. `examples/fix-bug` or `examples/sum-rows@7` for a dataset row. */
  id: string;
  /** Folder the task was loaded from (absolute). */
  dir: string;
  /** The format the task was loaded from, as its loader names it (`paddock`, `harbor`, `terminal-bench`…). */
  format: string;
  /** The prompt given to the agent. */
  instruction: string;
  /** Optional system prompt; agents use their own default when absent. */
  systemPrompt?: string;
  /** The sandbox; absent for tasks that need none (e.g. a web page served on loopback). */
  environment?: EnvironmentSpec;
  tools: BuiltinToolName[];
  limits: TaskLimits;
  /** The verifier; absent when plug-ins score the episode (page predicates, MCP state). */
  verifier?: VerifierSpec;
  solution?: SolutionSpec;
  /** Free-form metadata (tags, difficulty, category, dataset row index…). */
  metadata: Record<string, unknown>;
  /**
   * Sections that plug-ins read (browser start page, MCP servers, reward rules…), keyed
   * by plug-in name. The harness passes them through untouched.
   */
  extensions: Record<string, unknown>;
  /**
   * Paths in the sandbox (files or folders) kept on the host after verification, beside
   * the run's records (Harbor's top-level `artifacts`; in a multi-step task, after every
   * step). Within the episode's byte budget; see `VerifierResult.files`.
   */
  artifacts?: TaskArtifact[];
  /**
   * A multi-step task (Harbor's `[[steps]]`): the agent works through the steps in order
   * in one sandbox, each with its own instruction and verifier. `instruction`, `solution`
   * and `verifier` of the task are then the first step's (for code that reads one). See
   * `TaskSteps`.
   */
  steps?: TaskSteps;
}

/** A path kept after verification (see `Task.artifacts`). */
export interface TaskArtifact {
  /** Absolute path in the sandbox, a file or a folder. */
  source: string;
  /** Folder under the episode's `artifacts/` where it goes. @default the source without its leading `/` */
  destination?: string;
}

/** The steps of a multi-step task and how their rewards make the episode's. */
export interface TaskSteps {
  /** In the order they run. At least one. */
  list: TaskStep[];
  /**
   * How the episode's reward comes from the steps' (Harbor's `multi_step_reward_strategy`):
   * `mean`: the mean over the steps that ran, per score key (a key a step lacks counts 0);
   * `final`: the last step that ran. @default 'mean'
   */
  reward: 'mean' | 'final';
}

/** One step of a multi-step task. */
export interface TaskStep {
  /** Unique among the task's steps; reward components are named `step.<name>`. */
  name: string;
  /** The step's prompt. */
  instruction: string;
  /** Copied into the sandbox's working directory before the step's agent starts (Harbor's `steps/<name>/workdir/`). */
  workdir?: string;
  /**
   * Run as the agent's user in the working directory after `workdir` is copied and
   * before the agent starts (`bash <workdir>/setup.sh`); a non-zero exit fails the step.
   */
  setup?: string;
  /** Checked after `setup`, before the agent starts; failing it fails the step. */
  healthcheck?: StepHealthcheck;
  /** The step's verifier. */
  verifier: VerifierSpec;
  /** The step's reference solution, for the oracle. */
  solution?: SolutionSpec;
  /** Wall-clock limit of the step's agent part, in ms. @default the task's `limits.timeoutMs` */
  timeoutMs: number;
  /**
   * Later steps do not run when this step's reward is below it: a number gates the
   * `reward` score, a record gates each named score (a missing one fails).
   */
  minReward?: number | Record<string, number>;
  /** More paths to keep after this step's verification, besides the task's `artifacts`. */
  artifacts: TaskArtifact[];
  /**
   * The step continues the previous step's conversation (its instruction is the next user
   * message) instead of starting a new one. Files persist across steps either way.
   * @default false
   */
  continueSession: boolean;
}

/** A command that must succeed before a step's agent starts (Docker HEALTHCHECK semantics). */
export interface StepHealthcheck {
  command: string;
  /** Pause between tries, ms. @default 5_000 */
  intervalMs: number;
  /** Limit of one try, ms. @default 30_000 */
  timeoutMs: number;
  /** Tries after the start period. @default 3 */
  retries: number;
  /** Time during which failures do not count, ms. @default 0 */
  startPeriodMs: number;
}

/** What must be at a path a task file names: a file, a folder, or either. */
export type TaskPathKind = 'file' | 'dir' | 'any';

/** A host path that a plug-in section of a task file names (rubric, model, scorer, site…). */
export interface TaskPathRef {
  /** Dotted field path inside the section, e.g. `trajectory.0.judge.rubric`. */
  field: string;
  /** The path as written: relative to the task folder. */
  path: string;
  /** What must be there. @default 'any' */
  kind?: TaskPathKind;
  /** A missing path is no problem (one that leads outside the task folder still is). @default false */
  optional?: boolean;
}

/** Lists the host paths a parsed plug-in section names, for the loader to check. */
export type TaskPathLister = (section: unknown) => TaskPathRef[];

const taskPathListers = new WeakMap<object, TaskPathLister>();

/**
 * Declares which host paths a plug-in section schema's parsed value names. The task
 * loader checks each of them as it checks its own: they must resolve, after symbolic
 * links, inside the task folder, and a folder may hold no link that leads out of it.
 * Returns `schema` itself.
 */
export function declareTaskPaths<T extends object>(schema: T, lister: TaskPathLister): T {
  taskPathListers.set(schema, lister);
  return schema;
}

/** The lister `declareTaskPaths` registered for `schema`, if any. */
export function taskPathsOf(schema: object): TaskPathLister | undefined {
  return taskPathListers.get(schema);
}

/** The outcome of `checkTaskPath`. */
export type TaskPathCheck =
  | {
      ok: true;
      /** The resolved path (symbolic links followed), inside the task folder. */
      path: string;
      kind: 'file' | 'dir';
    }
  | {
      ok: false;
      /** True when nothing is there (as opposed to a path that is refused). */
      missing: boolean;
      /** What is wrong and what was expected, naming the path as written, never its contents. */
      message: string;
    };

function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return (
    relative === '' ||
    (!relative.startsWith(`..${path.sep}`) && relative !== '..' && !path.isAbsolute(relative))
  );
}

function errnoCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error
    ? String((error as NodeJS.ErrnoException).code)
    : undefined;
}

const NOT_THERE = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EACCES', 'ENAMETOOLONG']);

/**
 * Checks a path that a task file names, relative to `root` (the task folder): it must not
 * be absolute, must resolve — after every symbolic link — inside `root`, must be a regular
 * file or a folder (of the kind `want` asks), and a folder may hold no symbolic link that
 * leads outside `root` nor any special file (device, FIFO, socket), at any depth; links
 * to folders inside `root` are followed and checked too. Reads no file contents.
 *
 * @param root the task folder (absolute).
 * @param relative the path as written in the task file.
 */
export async function checkTaskPath(
  root: string,
  relative: string,
  want: TaskPathKind = 'any',
): Promise<TaskPathCheck> {
  const shown = JSON.stringify(relative.length > 120 ? `${relative.slice(0, 117)}...` : relative);
  const refuse = (message: string): TaskPathCheck => ({ ok: false, missing: false, message });
  if (relative.includes('\0')) return refuse(`${shown}: expected a path without NUL characters`);
  if (path.isAbsolute(relative))
    return refuse(`${shown} is absolute: expected a path relative to the task folder`);
  const lexical = path.resolve(root, relative);
  if (!isInside(path.resolve(root), lexical))
    return refuse(`${shown} leads outside the task folder: expected a path inside it`);
  let realRoot: string;
  let real: string;
  try {
    realRoot = await realpath(root);
  } catch (error) {
    if (NOT_THERE.has(errnoCode(error) ?? ''))
      return { ok: false, missing: true, message: `the task folder does not exist` };
    throw error;
  }
  try {
    real = await realpath(lexical);
  } catch (error) {
    if (!NOT_THERE.has(errnoCode(error) ?? '')) throw error;
    // A dangling link is refused when it points out, reported missing otherwise.
    const target = await linkTarget(lexical);
    if (target !== undefined && !isInside(realRoot, target) && !isInside(path.resolve(root), target))
      return refuse(
        `${shown} is a symbolic link that leads outside the task folder: expected a path inside it`,
      );
    return { ok: false, missing: true, message: `${shown} does not exist in the task folder` };
  }
  if (!isInside(realRoot, real))
    return refuse(
      `${shown} resolves (through a symbolic link) outside the task folder: expected a path inside it`,
    );
  const info = await stat(real);
  const kind = info.isDirectory() ? 'dir' : info.isFile() ? 'file' : undefined;
  if (kind === undefined) return refuse(`${shown} is not a regular file or folder`);
  if (want !== 'any' && kind !== want)
    return refuse(
      `${shown} is not a ${want === 'dir' ? 'folder' : 'file'}: expected a ${want === 'dir' ? 'folder' : 'file'}`,
    );
  if (kind === 'dir') {
    const escape = await findEscape(realRoot, real);
    if (escape !== undefined) {
      const where = JSON.stringify(path.join(relative, path.relative(real, escape.at)));
      return refuse(
        escape.kind === 'link'
          ? `${shown} holds a symbolic link ${where} that leads outside the task folder: expected links that stay inside it (or none)`
          : `${shown} holds ${where}, which is not a regular file, folder or link`,
      );
    }
  }
  return { ok: true, path: real, kind };
}

/** Where a symbolic link points (resolved against its folder), or undefined when `file` is no link. */
async function linkTarget(file: string): Promise<string | undefined> {
  try {
    return path.resolve(path.dirname(file), await readlink(file));
  } catch {
    // Not a link (or not there at all): nothing to compare.
    return undefined;
  }
}

/** The first entry below `dir` that leads outside `root` or is a special file; folders linked from inside are walked too. */
async function findEscape(
  root: string,
  dir: string,
): Promise<{ kind: 'link' | 'special'; at: string } | undefined> {
  const seen = new Set<string>();
  const pending = [dir];
  while (pending.length > 0) {
    const current = pending.pop()!;
    if (seen.has(current)) continue;
    seen.add(current);
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const at = path.join(current, entry.name);
      if (entry.isDirectory()) pending.push(at);
      else if (entry.isSymbolicLink()) {
        let target: string;
        try {
          target = await realpath(at);
        } catch {
          // Dangling: judge the link by where it points.
          target = (await linkTarget(at)) ?? at;
          if (!isInside(root, target)) return { kind: 'link', at };
          continue;
        }
        if (!isInside(root, target)) return { kind: 'link', at };
        if ((await stat(target)).isDirectory()) pending.push(target);
      } else if (!entry.isFile()) return { kind: 'special', at };
    }
  }
  return undefined;
}
