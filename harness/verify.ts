/**
 * Verification: after the agent has stopped, stop whatever it left running, clear the
 * reward location, upload the verifier's files, run its command with its own timeout,
 * and read the reward. Nothing the agent wrote before can reach the reward: the
 * reward folder and the verifier's target paths are emptied first.
 *
 * With `isolation: container` (see `verifyEpisode`) all of that happens in a fresh
 * sandbox from the same environment, into which only the task's `copy` paths are taken
 * from the agent's sandbox: whatever else the agent changed (a replaced python3, a
 * planted sitecustomize.py) is not there.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import { ERROR_CODES, PaddockError, describeError } from './errors.ts';
import type { VerifierResult } from './reward.ts';
import type { Sandbox, SandboxLabels, SandboxProvider } from './sandbox.ts';
import type { EnvironmentSpec, VerifierSpec } from './task.ts';

/** Bytes of verifier output kept in the record. */
const OUTPUT_TAIL_BYTES = 8 * 1024;

/** Harbor's log folders; tests expect them to exist. */
const LOG_DIRS = ['/logs/verifier', '/logs/agent', '/logs/artifacts'];

/**
 * Kills what the agent left running, so that nothing it started can write the reward
 * while the verifier runs. Kept: pid 1; the container's main process (pid 1's child
 * that started first — an orphan adopted by pid 1 always started later) and its
 * children; processes the engine started (parent pid 0: the sandbox's control shells,
 * checked at kill time since one may be starting while this runs); and this script's
 * ancestors. A control shell's idle worker (a child of the shell) is killed like the
 * rest; the shell replaces it. Builtins only (no forks), run twice to catch processes forked meanwhile.
 */
const STOP_AGENT_PROCESSES = [
  // Sets __pp (parent pid) and __st (start time, field 22 of /proc/<pid>/stat).
  'stat_of() { __pp=; __st=; { read -r __l < "/proc/$1/stat"; } 2>/dev/null || return 1; __l=${__l##*) }; set -- $__l; __pp=$2; __st=${20}; }',
  'main=; main_st=',
  'for d in /proc/[0-9]*; do pid=${d#/proc/}',
  '  stat_of "$pid" && [ "$__pp" = 1 ] && { [ -z "$main" ] || [ "$__st" -lt "$main_st" ]; } && { main=$pid; main_st=$__st; }',
  'done',
  'keep=" 1 $main "',
  // $$ is the parent shell inside a subshell; bash's BASHPID is this process.
  'p=${BASHPID:-$$}; while [ -n "$p" ] && [ "$p" -gt 1 ]; do keep="$keep$p "; stat_of "$p" || break; p=$__pp; done',
  'for round in 1 2; do',
  '  for d in /proc/[0-9]*; do pid=${d#/proc/}',
  '    case "$keep" in *" $pid "*) continue;; esac',
  '    stat_of "$pid" || continue',
  '    [ "$__pp" = 0 ] || [ "$__pp" = "$main" ] || kill -9 "$pid" 2>/dev/null',
  '  done',
  'done',
  'true',
].join('\n');

/** A reward.json: one number, or an object of named numbers (other keys are diagnostics). */
const RewardJsonSchema = z.union([z.number(), z.record(z.string(), z.unknown())]);

function tail(text: string): string {
  return text.length <= OUTPUT_TAIL_BYTES ? text : `…${text.slice(-OUTPUT_TAIL_BYTES)}`;
}

function quote(path: string): string {
  return `'${path.replace(/'/g, `'\\''`)}'`;
}

/** What an isolated verification needs besides the agent's sandbox. */
export interface VerifyContext {
  signal: AbortSignal;
  /** The provider that started the agent's sandbox; starts the fresh one. */
  provider?: SandboxProvider;
  /** The environment the agent's sandbox was started from. */
  environment?: EnvironmentSpec;
  /** The episode's labels, given to the fresh sandbox too (so that the reaper finds it). */
  labels?: SandboxLabels;
}

/**
 * Scores an episode whose agent has stopped: `runVerifier` in the agent's sandbox, or,
 * with `spec.isolation`, in a fresh sandbox (see `runIsolatedVerifier`).
 */
export async function verifyEpisode(
  spec: VerifierSpec,
  sandbox: Sandbox,
  context: VerifyContext,
): Promise<VerifierResult> {
  if (!spec.isolation) return runVerifier(spec, sandbox, { signal: context.signal });
  return runIsolatedVerifier(spec, sandbox, context);
}

/**
 * The isolated verification: stops the agent's processes (so that the copy is a
 * snapshot), starts a fresh sandbox from the same environment and labels, replaces each
 * `copy` path there with the agent's (a missing one is removed and recorded; the
 * verifier runs without it), runs `runVerifier` there and removes the fresh sandbox,
 * whatever happens. The agent's sandbox is left open: the episode closes it at its end,
 * after plug-in sessions (which may read it) have scored.
 * @throws PaddockError from `provider.start` (a failed start is an infrastructure error,
 *   retryable as the provider says), SANDBOX_FAILED (copying failed), CONFIG_INVALID (a
 *   sandbox without `download`/`extract`), ABORTED.
 */
export async function runIsolatedVerifier(
  spec: VerifierSpec,
  agentSandbox: Sandbox,
  context: VerifyContext,
): Promise<VerifierResult> {
  const started = performance.now();
  const { provider, environment, labels, signal } = context;
  if (!provider || !environment || !labels) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      'an isolated verifier needs the sandbox provider, environment and labels of the episode',
    );
  }
  if (!agentSandbox.download) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `verifier isolation "container" needs sandboxes that can download files; ${provider.kind} sandboxes cannot`,
    );
  }
  const paths = [...new Set((spec.isolation?.copy ?? [agentSandbox.workdir]).map(normalise))];
  if (paths.includes('/')) {
    return failed(
      spec.isolation?.copy
        ? "verifier.copy cannot copy / (the agent's whole filesystem)"
        : "verifier isolation copies the environment's workdir by default, but the workdir is /: list the paths to copy in verifier.copy",
      started,
    );
  }
  // The agent's leftovers must not change files while they are copied.
  await agentSandbox.exec(STOP_AGENT_PROCESSES, { user: 'root', timeoutMs: 60_000, signal, cwd: '/' });

  const fresh = await provider.start(environment, { labels, signal });
  const startMs = performance.now() - started;
  try {
    if (!fresh.extract) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `verifier isolation "container" needs sandboxes that can extract archives; ${provider.kind} sandboxes cannot`,
      );
    }
    const copyStarted = performance.now();
    const parents = [...new Set(paths.map((path) => posix.dirname(path)))];
    const cleared = await fresh.exec(
      [`rm -rf ${paths.map(quote).join(' ')}`, `mkdir -p ${parents.map(quote).join(' ')}`].join('\n'),
      { user: 'root', timeoutMs: 60_000, signal, cwd: '/' },
    );
    if (cleared.exitCode !== 0) {
      throw new PaddockError(
        ERROR_CODES.SANDBOX_FAILED,
        `could not prepare the fresh sandbox for the copy: ${cleared.stderr.trim()}`,
      );
    }
    const copied: string[] = [];
    const missing: string[] = [];
    for (const path of paths) {
      const archive = await agentSandbox.download(path, { signal });
      if (!archive) {
        missing.push(path);
        continue;
      }
      await fresh.extract(archive, posix.dirname(path), { signal });
      copied.push(path);
    }
    const copyMs = performance.now() - copyStarted;
    const result = await runVerifier(spec, fresh, { signal });
    return {
      ...result,
      durationMs: performance.now() - started,
      warnings: [
        ...missing.map(
          (path) =>
            `verifier.copy: ${path} does not exist in the agent's sandbox; the verifier ran without it`,
        ),
        ...result.warnings,
      ],
      isolation: { kind: 'container', sandboxId: fresh.id, copied, missing, startMs, copyMs },
    };
  } finally {
    await fresh.close();
  }
}

/** `/app/` → `/app`, `/a/../b` → `/b`. */
function normalise(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

export async function runVerifier(
  spec: VerifierSpec,
  sandbox: Sandbox,
  options: { signal: AbortSignal },
): Promise<VerifierResult> {
  const started = performance.now();
  const rewardDir = spec.reward.kind === 'files' ? spec.reward.dir : undefined;
  const cleared = [...spec.files.map((file) => file.sandboxPath), ...(rewardDir ? [rewardDir] : [])];
  const prepare = [
    STOP_AGENT_PROCESSES,
    ...cleared.map((path) => `rm -rf ${quote(path)}`),
    `mkdir -p ${[...LOG_DIRS, ...(rewardDir ? [rewardDir] : [])].map(quote).join(' ')}`,
    `chmod 777 ${[...LOG_DIRS, ...(rewardDir ? [rewardDir] : [])].map(quote).join(' ')}`,
  ].join('\n');
  const prepared = await sandbox.exec(prepare, {
    user: 'root',
    timeoutMs: 60_000,
    signal: options.signal,
    cwd: '/',
  });
  if (prepared.exitCode !== 0) {
    return failed(`could not prepare the sandbox for verification: ${prepared.stderr.trim()}`, started);
  }
  for (const file of spec.files) await sandbox.upload(file.hostPath, file.sandboxPath, options);

  const run = await sandbox.exec(spec.command, {
    timeoutMs: spec.timeoutMs,
    signal: options.signal,
    env: spec.env,
    user: spec.user ?? 'root',
    maxOutputBytes: 256 * 1024,
    ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
  });
  const output = `${run.stdout}\n${run.stderr}`;
  const warnings = pytestWarnings(output);
  const base = {
    exitCode: run.exitCode,
    stdout: tail(run.stdout),
    stderr: tail(run.stderr),
    timedOut: run.timedOut,
    durationMs: performance.now() - started,
    warnings,
  };
  if (run.timedOut)
    return { ...base, reward: null, scores: {}, error: `the verifier timed out after ${spec.timeoutMs} ms` };

  switch (spec.reward.kind) {
    case 'exit-code': {
      const reward = run.exitCode === 0 ? 1 : 0;
      return { ...base, reward, scores: { reward } };
    }
    case 'pytest-output': {
      const reward = pytestPassed(output) ? 1 : 0;
      return { ...base, reward, scores: { reward } };
    }
    case 'files': {
      const read = await readRewardFiles(sandbox, spec.reward.dir, options.signal);
      return { ...base, ...read };
    }
  }
}

function failed(error: string, started: number): VerifierResult {
  return {
    reward: null,
    scores: {},
    exitCode: -1,
    stdout: '',
    stderr: '',
    timedOut: false,
    durationMs: performance.now() - started,
    error,
    warnings: [],
  };
}

async function readText(sandbox: Sandbox, path: string, signal: AbortSignal): Promise<string | undefined> {
  try {
    return Buffer.from(await sandbox.readFile(path, { signal })).toString('utf8');
  } catch {
    // A missing file is an expected outcome here: the caller tries the next location.
    return undefined;
  }
}

/**
 * Reads `<dir>/reward.json` (a number, `{reward, …}`, or named scores whose mean is the
 * reward) or else `<dir>/reward.txt` (one number).
 */
export async function readRewardFiles(
  sandbox: Sandbox,
  dir: string,
  signal: AbortSignal,
): Promise<Pick<VerifierResult, 'reward' | 'scores' | 'error'>> {
  const json = await readText(sandbox, `${dir}/reward.json`, signal);
  if (json !== undefined) {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch (error) {
      return { reward: null, scores: {}, error: `reward.json is not valid JSON: ${describeError(error)}` };
    }
    const parsed = RewardJsonSchema.safeParse(value);
    if (!parsed.success)
      return { reward: null, scores: {}, error: 'reward.json must be a number or an object of numbers' };
    if (typeof parsed.data === 'number') return { reward: parsed.data, scores: { reward: parsed.data } };
    const scores: Record<string, number> = {};
    for (const [key, score] of Object.entries(parsed.data)) {
      if (typeof score === 'number' && Number.isFinite(score)) scores[key] = score;
    }
    const values = Object.values(scores);
    if (values.length === 0) return { reward: null, scores: {}, error: 'reward.json holds no numeric score' };
    const reward = scores.reward ?? values.reduce((sum, score) => sum + score, 0) / values.length;
    return { reward, scores };
  }
  const text = await readText(sandbox, `${dir}/reward.txt`, signal);
  if (text === undefined)
    return { reward: null, scores: {}, error: `no reward file in ${dir} after the verifier ran` };
  const reward = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(reward)) {
    return {
      reward: null,
      scores: {},
      error: `reward.txt does not hold a number: ${JSON.stringify(text.slice(0, 80))}`,
    };
  }
  return { reward, scores: { reward } };
}

/** True when pytest output reports passing tests and no failures or errors. */
export function pytestPassed(output: string): boolean {
  const summary = output.match(/=+ (.*(?:passed|failed|error).*) in [\d.]+s.*=+/g)?.at(-1);
  if (!summary) return false;
  return /\d+ passed/.test(summary) && !/\d+ (failed|errors?)\b/.test(summary);
}

function pytestWarnings(output: string): string[] {
  if (/pytest: error: unrecognized arguments|ERROR: usage: .*pytest/i.test(output)) {
    return [
      'pytest refused its arguments (a plugin flag such as --ctrf may be missing from the image): tests did not run',
    ];
  }
  return [];
}
