/**
 * The Task contract: what one episode is asked to do, where, with which tools, and how
 * it is scored. Task files of any format (paddock's own `task.yaml`, Harbor's
 * `task.toml`, dataset rows) are loaded by `tasks/` into this one shape; the harness
 * never reads task files itself.
 */

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
  /** User the verifier runs as. @default 'root' */
  user?: string;
  /**
   * Where the reward is read from:
   * - `files`: `<dir>/reward.json` (an object of named scores, or `{reward, …}`) or `<dir>/reward.txt` (one number);
   * - `exit-code`: 1 when the command exits 0, else 0;
   * - `pytest-output`: 1 when the output reports passing tests and no failures (Terminal-Bench 1).
   */
  reward: { kind: 'files'; dir: string } | { kind: 'exit-code' } | { kind: 'pytest-output' };
  /**
   * Where the verifier runs. Absent: in the agent's own sandbox (Harbor's way), where an
   * agent that ran as root can have replaced what the verifier relies on (python3,
   * pytest, site-packages). `container`: in a fresh sandbox started from the same
   * environment after the agent stops, with only `copy` taken over from the agent's.
   */
  isolation?: VerifierIsolation;
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
  /** The format the task was loaded from. */
  format: 'paddock' | 'harbor' | 'terminal-bench';
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
}
