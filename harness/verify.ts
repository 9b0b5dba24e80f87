/**
 * Verification: after the agent has stopped, the sandbox is sealed (`Sandbox.seal`: every
 * process the agent started is killed, its shells are replaced, the system files it
 * changed are restored), then the reward location is cleared, the verifier's files are
 * uploaded, its command runs with its own timeout, and the reward is read. Nothing the
 * agent wrote before can reach the reward: the reward folder and the verifier's target
 * paths are emptied first, and nothing of the agent runs any more.
 *
 * A sandbox kind without `seal` gives weaker guarantees: the verifier then runs beside
 * whatever the agent left running, and the result carries a warning saying so.
 *
 * With `isolation: container` (see `verifyEpisode`) all of that happens in a fresh
 * sandbox from the same environment, into which only the task's `copy` paths are taken
 * from the agent's sandbox: whatever else the agent changed (a replaced python3, a
 * planted sitecustomize.py) is not there.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path, { posix } from 'node:path';
import { z } from 'zod';
import { ERROR_CODES, PaddockError, describeError, isPaddockError } from './errors.ts';
import type { KeptFile, VerifierResult } from './reward.ts';
import type { Sandbox, SandboxLabels, SandboxProvider, SealReport } from './sandbox.ts';
import type { EnvironmentSpec, VerifierSpec } from './task.ts';

/** Bytes of verifier output kept in the record. */
const OUTPUT_TAIL_BYTES = 8 * 1024;

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
  /** Keeps what the verifier leaves in its `keepDir` (see `runVerifier`). */
  keep?: KeepFiles;
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
  if (!spec.isolation)
    return runVerifier(spec, sandbox, {
      signal: context.signal,
      ...(context.keep ? { keep: context.keep } : {}),
    });
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
  const agentSeal = await agentSandbox.seal?.({ signal });

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
    // The copy may carry start-up hooks (a sitecustomize.py in the workdir): runVerifier
    // seals the fresh sandbox first, which removes them as it would in the agent's.
    const result = await runVerifier(spec, fresh, {
      signal,
      ...(context.keep ? { keep: context.keep } : {}),
    });
    return {
      ...result,
      durationMs: performance.now() - started,
      warnings: [
        ...missing.map(
          (path) =>
            `verifier.copy: ${path} does not exist in the agent's sandbox; the verifier ran without it`,
        ),
        ...result.warnings,
        ...(agentSeal?.warnings ?? []).map((warning) => `agent sandbox: ${warning}`),
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

/** The reward's own folder: a `files` reward's `dir`. */
function rewardDirOf(spec: VerifierSpec): string | undefined {
  return spec.reward.kind === 'files' ? spec.reward.dir : undefined;
}

/** The folder whose files are the verifier's (see `VerifierSpec.keepDir`). */
function keepDirOf(spec: VerifierSpec): string | undefined {
  return spec.keepDir ?? rewardDirOf(spec);
}

/**
 * The folders emptied before the verifier runs and removed before a multi-step task's
 * next step: where the reward, the verifier's files and a reader's inputs are. Nothing
 * the agent left there can be read as the verifier's.
 */
function verifierDirs(spec: VerifierSpec): string[] {
  return [
    ...new Set(
      [rewardDirOf(spec), keepDirOf(spec), ...(spec.reward.kind === 'reader' ? (spec.reward.dirs ?? []) : [])]
        .filter((dir): dir is string => dir !== undefined)
        .map(normalise),
    ),
  ];
}

/** Shell lines that create `dirs` as root, writable by every user (none for no folder). */
function createWritable(dirs: readonly string[]): string[] {
  if (dirs.length === 0) return [];
  const quoted = dirs.map(quote).join(' ');
  return [`mkdir -p ${quoted}`, `chmod 777 ${quoted}`];
}

/**
 * Runs the verifier in `sandbox`: seals it, empties the verifier's folders (the reward
 * folder, `keepDir`, a reader's `dirs`) and upload targets, creates those and the
 * `logDirs` writable, uploads its files, runs its command with its own timeout and reads
 * the reward. With `keep`, every file the verifier left in its `keepDir` is copied to the
 * host (see `KeepFiles`), a timed-out verifier's too.
 * @throws what `Sandbox.seal` throws (the sandbox no longer runs), what a reward reader
 *   throws (see `RewardReader.read`), ABORTED.
 */
export async function runVerifier(
  spec: VerifierSpec,
  sandbox: Sandbox,
  options: { signal: AbortSignal; keep?: KeepFiles },
): Promise<VerifierResult> {
  const started = performance.now();
  const reader = spec.reward.kind === 'reader' ? spec.reward : undefined;
  const emptied = verifierDirs(spec);
  const keepDir = keepDirOf(spec);
  const cleared = [...spec.files.map((file) => file.sandboxPath), ...emptied];
  const created = [...new Set([...(spec.logDirs ?? []).map(normalise), ...emptied])];
  const seal = await sealSandbox(sandbox, options.signal);
  const prepare = [...cleared.map((path) => `rm -rf ${quote(path)}`), ...createWritable(created)].join('\n');
  const prepared = prepare
    ? await sandbox.exec(prepare, { user: 'root', timeoutMs: 60_000, signal: options.signal, cwd: '/' })
    : undefined;
  if (prepared && prepared.exitCode !== 0) {
    return {
      ...failed(`could not prepare the sandbox for verification: ${prepared.stderr.trim()}`, started),
      ...seal,
    };
  }
  for (const file of spec.files) await sandbox.upload(file.hostPath, file.sandboxPath, options);

  const run = await sandbox.exec(spec.command, {
    timeoutMs: spec.timeoutMs,
    signal: options.signal,
    env: reader?.env ? reader.env(spec.env) : spec.env,
    user: spec.user ?? 'root',
    maxOutputBytes: 256 * 1024,
    ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
  });
  const output = `${run.stdout}\n${run.stderr}`;
  const warnings = [...seal.warnings, ...(spec.outputWarnings?.(output) ?? [])];
  const kept =
    options.keep && keepDir ? await options.keep.keep(sandbox, keepDir, 'verifier', options.signal) : [];
  const base = {
    exitCode: run.exitCode,
    stdout: tail(run.stdout),
    stderr: tail(run.stderr),
    timedOut: run.timedOut,
    durationMs: performance.now() - started,
    warnings,
    ...(seal.seal ? { seal: seal.seal } : {}),
    ...(options.keep ? { files: kept } : {}),
  };
  if (run.timedOut)
    return { ...base, reward: null, scores: {}, error: `the verifier timed out after ${spec.timeoutMs} ms` };

  const range = spec.rewardRange ?? DEFAULT_REWARD_RANGE;
  switch (spec.reward.kind) {
    case 'exit-code': {
      const reward = run.exitCode === 0 ? 1 : 0;
      return { ...base, reward, scores: { reward }, aggregate: 'single' };
    }
    case 'reader': {
      const read = await spec.reward.read({
        output,
        exitCode: run.exitCode,
        sandbox,
        signal: options.signal,
      });
      const scored: Pick<VerifierResult, 'reward' | 'scores' | 'error' | 'aggregate'> =
        read.reward === null
          ? { reward: null, scores: {}, error: read.error ?? `the ${spec.reward.name} reader read no reward` }
          : Number.isFinite(read.reward)
            ? { reward: read.reward, scores: { reward: read.reward }, aggregate: 'single' }
            : {
                reward: null,
                scores: {},
                error: `the ${spec.reward.name} reader read a reward that is not finite`,
              };
      return {
        ...base,
        warnings: [...warnings, ...(read.warnings ?? [])],
        ...checkRange(scored, range),
        reader: spec.reward.name,
        ...(read.details ? { details: read.details } : {}),
      };
    }
    case 'files': {
      const read = await readRewardFiles(sandbox, spec.reward.dir, options.signal);
      return { ...base, ...checkRange(read, range) };
    }
  }
}

/**
 * After a multi-step task's step is verified (and its files copied out), before the next
 * step's agent starts: removes the step's uploaded files and the verifier's folders (see
 * `runVerifier`), so that a later step's agent never reads an earlier step's hidden tests,
 * reports or expected values, and re-creates the folders a verifier writes to.
 * @throws SANDBOX_FAILED when they cannot be removed; what `exec` throws; ABORTED.
 */
export async function clearVerifierTraces(
  spec: VerifierSpec,
  sandbox: Sandbox,
  signal: AbortSignal,
): Promise<void> {
  const emptied = verifierDirs(spec);
  const paths = [...new Set([...spec.files.map((file) => file.sandboxPath), ...emptied])];
  const lines = [
    ...paths.map((path) => `rm -rf ${quote(path)}`),
    ...createWritable([...new Set([...(spec.logDirs ?? []).map(normalise), ...emptied])]),
  ];
  if (lines.length === 0) return;
  const cleared = await sandbox.exec(['set -e', ...lines].join('\n'), {
    user: 'root',
    timeoutMs: 60_000,
    signal,
    cwd: '/',
  });
  if (cleared.exitCode !== 0) {
    throw new PaddockError(
      ERROR_CODES.SANDBOX_FAILED,
      `could not remove the step's tests before the next step: ${cleared.stderr.trim().slice(0, 300)}`,
    );
  }
}

/** The range a verifier's reward may take unless the task widens it. */
export const DEFAULT_REWARD_RANGE: readonly [number, number] = [0, 1];

/**
 * A reward (and every named score) outside `range` is a verifier error: the record keeps
 * what was read in the note, and the reward is null (scored 0, never averaged as is).
 */
function checkRange(
  read: Pick<VerifierResult, 'reward' | 'scores' | 'error' | 'aggregate'>,
  range: readonly [number, number],
): Pick<VerifierResult, 'reward' | 'scores' | 'error' | 'aggregate'> {
  if (read.reward === null) return read;
  const [min, max] = range;
  // With a `reward` key the other keys are diagnostics; without one, every score is averaged.
  const checked = 'reward' in read.scores ? { reward: read.reward } : { ...read.scores, reward: read.reward };
  const outside = Object.entries(checked).filter(([, value]) => !(value >= min && value <= max));
  if (outside.length === 0) return read;
  return {
    reward: null,
    scores: {},
    error: `the reward is outside the task's range [${min}, ${max}]: ${outside
      .map(([key, value]) => `${key}=${String(value)}`)
      .join(', ')
      .slice(0, 300)} (verifier.reward_range widens it)`,
  };
}

/**
 * Seals the sandbox when its kind can (see `Sandbox.seal`), else says what that means.
 * @throws what `seal` throws (the sandbox no longer runs: the caller diagnoses).
 */
async function sealSandbox(
  sandbox: Sandbox,
  signal: AbortSignal,
): Promise<{ seal?: SealReport; warnings: string[] }> {
  if (!sandbox.seal) {
    return {
      warnings: [
        "this sandbox kind cannot stop the agent's processes: the verifier ran beside whatever the agent left running",
      ],
    };
  }
  const seal = await sandbox.seal({ signal });
  return { seal, warnings: seal.warnings };
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

/** Reward files larger than this are a verifier error, not read. */
export const MAX_REWARD_FILE_BYTES = 1024 * 1024;

async function readText(
  sandbox: Sandbox,
  path: string,
  signal: AbortSignal,
): Promise<string | undefined | { error: string }> {
  try {
    return Buffer.from(await sandbox.readFile(path, { signal, maxBytes: MAX_REWARD_FILE_BYTES })).toString(
      'utf8',
    );
  } catch (error) {
    // An abort is never "no reward file": the episode is not recorded at all then.
    if (signal.aborted) throw error;
    if (isPaddockError(error, 'SANDBOX_FAILED') && error.details.tooLarge)
      return { error: `${path}: ${error.message}` };
    // Nothing at the path is no reward file: the caller tries the next location. Something
    // else there (a folder, a FIFO, a device) is the verifier's error. Any other fault is
    // the sandbox's (SANDBOX_FAILED): it propagates, and the episode is an infra-error.
    if (!isPaddockError(error, 'FILE_NOT_FOUND')) throw error;
    if (error.details.type === undefined) return undefined;
    return { error: `${path} is not a readable regular file: ${error.message}` };
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
): Promise<Pick<VerifierResult, 'reward' | 'scores' | 'error' | 'aggregate'>> {
  const json = await readText(sandbox, `${dir}/reward.json`, signal);
  if (typeof json === 'object') return { reward: null, scores: {}, error: json.error };
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
    if (typeof parsed.data === 'number')
      return { reward: parsed.data, scores: { reward: parsed.data }, aggregate: 'single' };
    if (!Number.isFinite(parsed.data) && typeof parsed.data === 'number')
      return { reward: null, scores: {}, error: 'reward.json holds a number that is not finite' };
    const scores: Record<string, number> = {};
    for (const [key, score] of Object.entries(parsed.data)) {
      if (typeof score === 'number') {
        if (!Number.isFinite(score))
          return { reward: null, scores: {}, error: `reward.json: ${key} is not a finite number` };
        scores[key] = score;
      }
    }
    const values = Object.values(scores);
    if (values.length === 0) return { reward: null, scores: {}, error: 'reward.json holds no numeric score' };
    if (scores.reward !== undefined) return { reward: scores.reward, scores, aggregate: 'reward-key' };
    const reward = values.reduce((sum, score) => sum + score, 0) / values.length;
    return { reward, scores, aggregate: values.length === 1 ? 'single' : 'mean' };
  }
  const text = await readText(sandbox, `${dir}/reward.txt`, signal);
  if (typeof text === 'object') return { reward: null, scores: {}, error: text.error };
  if (text === undefined)
    return { reward: null, scores: {}, error: `no reward file in ${dir} after the verifier ran` };
  // A decimal number only: Number() would also take 0x10, 1e308 or Infinity.
  const trimmed = text.trim();
  const reward = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(trimmed) ? Number(trimmed) : NaN;
  if (trimmed === '' || !Number.isFinite(reward)) {
    return {
      reward: null,
      scores: {},
      error: `reward.txt does not hold a number: ${JSON.stringify(text.slice(0, 80))}`,
    };
  }
  return { reward, scores: { reward }, aggregate: 'single' };
}

/** What one episode may keep on the host, in bytes, unless its options say otherwise. @default 10 MiB */
export const DEFAULT_KEPT_BYTES = 10 * 1024 * 1024;
/** Files kept per episode at most (a verifier that leaves many tiny files is cut here). */
const MAX_KEPT_FILES = 2_000;

/** The byte budget and notes shared by an episode's `KeepFiles` views. */
interface KeepState {
  left: number;
  files: number;
  started: boolean;
  notes: string[];
}

/**
 * Copies files out of a sandbox into one episode's folder on the host, within one byte
 * budget for the whole episode: what the verifier leaves in its `keepDir`, and the
 * task's declared artifacts. Only regular files are copied (links are not followed, and
 * nothing outside the episode's folder is ever written: names are checked component by
 * component). A file over what the budget has left is not copied; `notes` says what was
 * left out, and why. The folder is emptied on first use, so a re-run of the episode
 * never mixes its files with an earlier attempt's.
 */
export class KeepFiles {
  private readonly state: KeepState;

  /**
   * @param dir the episode's folder on the host (absolute; created on first use).
   * @param recordAs how `dir` is named in the record: relative to the run folder, so view can open it.
   * @param maxBytes the episode's budget. @default DEFAULT_KEPT_BYTES
   */
  constructor(
    readonly dir: string,
    readonly recordAs: string,
    readonly maxBytes: number = DEFAULT_KEPT_BYTES,
    private readonly prefix: string = '',
    state?: KeepState,
  ) {
    this.state = state ?? { left: maxBytes, files: 0, started: false, notes: [] };
  }

  /** What was left out and why (the budget, the file count, a name), for the record. */
  get notes(): readonly string[] {
    return this.state.notes;
  }

  /** A view that keeps files under `<prefix>/` (a step's folder), sharing this budget. */
  under(prefix: string): KeepFiles {
    return new KeepFiles(
      this.dir,
      this.recordAs,
      this.maxBytes,
      this.prefix ? `${this.prefix}/${prefix}` : prefix,
      this.state,
    );
  }

  /**
   * Copies the regular files at or under `source` (a file or a folder in the sandbox):
   * a folder's to `<dir>/<into>/<their path below it>`, a file to `<dir>/<into>`. Runs as
   * root in the sandbox (after sealing, in fresh shells). Missing `source`: nothing. A
   * file that is not there or not regular (FILE_NOT_FOUND) or over the budget is noted,
   * not thrown; throws ABORTED, and what `exec` and `readFile` throw when the sandbox no
   * longer runs (SANDBOX_FAILED: the episode is an infra-error, not a note).
   * @param into a relative path (`verifier`, `artifacts/app`…).
   */
  async keep(sandbox: Sandbox, source: string, into: string, signal: AbortSignal): Promise<KeptFile[]> {
    this.prepare();
    const state = this.state;
    const root = normalise(source);
    // -P: links are listed, never followed; -xdev: no other mounts; NUL-separated names.
    const listed = await sandbox.exec(
      `if [ -e ${quote(root)} ]; then find -P ${quote(root)} -xdev -type f -print0 2>/dev/null | head -c 4194304; fi`,
      { user: 'root', timeoutMs: 60_000, signal, cwd: '/' },
    );
    const names = listed.stdout.split('\0').filter((name) => name === root || name.startsWith(`${root}/`));
    const kept: KeptFile[] = [];
    for (const name of names.sort()) {
      const target = this.target(into, name === root ? '' : name.slice(root.length + 1));
      if (!target) {
        state.notes.push(`${name}: not kept (its name cannot be a file name on the host)`);
        continue;
      }
      if (state.files >= MAX_KEPT_FILES) {
        state.notes.push(`${name} and the rest: not kept (more than ${MAX_KEPT_FILES} files)`);
        break;
      }
      let data: Uint8Array;
      try {
        data = await sandbox.readFile(name, { signal, maxBytes: state.left });
      } catch (error) {
        if (signal.aborted) throw error;
        const tooLarge = isPaddockError(error, 'SANDBOX_FAILED') && error.details.tooLarge === true;
        // A file that is not a regular file or is over the budget is noted; a sandbox that
        // broke under the copy is an infrastructure fault, never a note.
        if (!tooLarge && !isPaddockError(error, ERROR_CODES.FILE_NOT_FOUND)) throw error;
        state.notes.push(
          tooLarge
            ? `${name}: not kept (over the ${this.maxBytes}-byte budget of the episode's files)`
            : `${name}: not kept (${describeError(error).slice(0, 200)})`,
        );
        continue;
      }
      mkdirSync(path.dirname(target.host), { recursive: true });
      writeFileSync(target.host, data);
      state.left -= data.byteLength;
      state.files++;
      kept.push({ path: target.record, source: name, bytes: data.byteLength });
    }
    return kept;
  }

  /** Where a file goes, on the host and in the record; undefined for a name that cannot be one. */
  private target(into: string, relative: string): { host: string; record: string } | undefined {
    const parts = [this.prefix, into, relative]
      .filter((part) => part !== '')
      .join('/')
      .split('/');
    if (parts.some((part) => part === '' || part === '.' || part === '..')) return undefined;
    const host = path.join(this.dir, ...parts);
    if (!host.startsWith(this.dir + path.sep)) return undefined;
    return { host, record: posix.join(this.recordAs, ...parts) };
  }

  private prepare(): void {
    if (this.state.started) return;
    this.state.started = true;
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
  }
}
