/**
 * The TypeScript side of the PyTorch worker (trainers/torch/worker.py): spawns it,
 * speaks its newline-delimited JSON protocol (trainers/torch/PROTOCOL.md), and supervises
 * it. A worker that exits, is killed, breaks the protocol or does not answer in time
 * fails every pending request with TRAINER_FAILED carrying the tail of its stderr —
 * never a hang.
 *
 * With `distributed`, the worker runs under torchrun (`python -m torch.distributed.run`),
 * one process per rank, in a process group of its own: stopping or killing the worker
 * signals the whole group, so no rank outlives it.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { ERROR_CODES, PaddockError, describeError } from '../../harness/index.ts';
import { trainerError } from './errors.ts';

/** The worker script shipped with paddock. */
export const WORKER_SCRIPT = join(import.meta.dirname, '..', 'torch', 'worker.py');

/** Debian's interpreter, which has `python3-torch`. */
export const DEFAULT_PYTHON = '/usr/bin/python3';

export interface TorchWorkerOptions {
  /** Python interpreter. @default $PADDOCK_PYTHON, else /usr/bin/python3 */
  python?: string;
  /** The worker script. @default WORKER_SCRIPT */
  script?: string;
  /** Extra environment of the worker. */
  env?: Record<string, string>;
  /** How long the worker may take to import torch and say it is ready, in ms. @default 120_000 */
  startTimeoutMs?: number;
  /** Default limit of one request, in ms. @default 1_800_000 */
  requestTimeoutMs?: number;
  /** Bytes of stderr kept for error messages. @default 8_192 */
  stderrTailBytes?: number;
  /** Receives the worker's stderr as it comes (logs, warnings). */
  onStderr?: (text: string) => void;
  /** Aborting kills the worker and fails pending requests with ABORTED. */
  signal?: AbortSignal;
  /**
   * Run the worker under torchrun (`python -m torch.distributed.run`): `nprocPerNode` ranks
   * on this machine (and `nnodes` machines in all, the others started by hand with the same
   * rendezvous), data parallel: each rank takes a share of a step's micro-batches and the
   * gradients are summed across ranks, so a step equals one process's (to float rounding).
   * Rank 0 speaks the protocol; the others take each request from it. Absent: one
   * process, as before. See trainers/torch/PROTOCOL.md, "Several processes (torchrun)".
   */
  distributed?: DistributedOptions;
}

/** torchrun's settings (see `TorchWorkerOptions.distributed`). */
export interface DistributedOptions {
  /** Ranks on this machine (torchrun `--nproc_per_node`). */
  nprocPerNode: number;
  /** Machines in all (`--nnodes`). @default 1 */
  nnodes?: number;
  /** This machine's index (`--node_rank`); the protocol is spoken by node 0's rank 0. @default 0 */
  nodeRank?: number;
  /** Rendezvous host of a multi-node run (`--master_addr`). @default 127.0.0.1 */
  masterAddr?: string;
  /** Rendezvous port (`--master_port`). @default a free port on one machine, 29500 on several */
  masterPort?: number;
  /** `gloo` (CPU), `nccl` (CUDA) or `auto` (nccl when CUDA is present). @default auto */
  backend?: 'auto' | 'gloo' | 'nccl';
}

const ReadySchema = z.object({
  event: z.literal('ready'),
  protocol: z.number(),
  pid: z.number(),
  torch: z.string(),
  cuda: z.boolean(),
  python: z.string(),
  /** Ranks in all, under torchrun. */
  world_size: z.number().optional(),
});

export type WorkerHello = z.infer<typeof ReadySchema>;

const ResponseSchema = z.union([
  z.object({ id: z.number(), ok: z.literal(true), result: z.unknown() }),
  z.object({
    id: z.number().nullable(),
    ok: z.literal(false),
    error: z.object({ type: z.string(), message: z.string(), traceback: z.string().optional() }),
  }),
]);

/** How the worker runs under torchrun (absent: one process). */
interface DistributedRun {
  /** Ranks in all (`nprocPerNode × nnodes`). */
  worldSize: number;
  /** torchrun's `--log_dir` (each rank's stderr file), removed when the worker exits. */
  logDir: string;
}

/** A free TCP port on 127.0.0.1 (for a one-machine rendezvous). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function integerAtLeast(value: number | undefined, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < min)
    throw trainerError(`distributed.${name} must be an integer of at least ${min}, not ${value}`);
  return value;
}

/**
 * torchrun's command line for `distributed` (after the interpreter). The rank processes'
 * stderr goes to files under `logDir` and is copied to torchrun's stderr line by line,
 * prefixed with `[default<local rank>]:` (`--redirects 2 --tee 2`; also needed because
 * PyTorch 1.13 on Python 3.11 cannot parse torchrun's default `--redirects 0`); rank 0's
 * stdout is the protocol stream.
 */
export async function torchrunArgs(
  distributed: DistributedOptions,
  script: string,
  logDir: string,
): Promise<{ args: string[]; worldSize: number }> {
  const nproc = integerAtLeast(distributed.nprocPerNode, 'nprocPerNode', 1)!;
  const nnodes = integerAtLeast(distributed.nnodes, 'nnodes', 1) ?? 1;
  const nodeRank = integerAtLeast(distributed.nodeRank, 'nodeRank', 0) ?? 0;
  if (nodeRank >= nnodes)
    throw trainerError(`distributed.nodeRank ${nodeRank} is not below nnodes ${nnodes}`);
  const port =
    integerAtLeast(distributed.masterPort, 'masterPort', 1) ?? (nnodes === 1 ? await freePort() : 29_500);
  const rendezvous =
    nnodes === 1
      ? // One machine: a static rendezvous on a free local port (`--standalone` would always
        // take port 29400, so two workers on one machine would meet each other).
        ['--nnodes', '1', '--node_rank', '0', '--master_addr', distributed.masterAddr ?? '127.0.0.1']
      : [
          '--nnodes',
          String(nnodes),
          '--node_rank',
          String(nodeRank),
          '--master_addr',
          distributed.masterAddr ?? '127.0.0.1',
        ];
  return {
    worldSize: nproc * nnodes,
    args: [
      '-u',
      '-m',
      'torch.distributed.run',
      '--nproc_per_node',
      String(nproc),
      ...rendezvous,
      '--master_port',
      String(port),
      '--max_restarts',
      '0',
      '--monitor_interval',
      '0.5',
      '--redirects',
      '2',
      '--tee',
      '2',
      '--log_dir',
      logDir,
      script,
    ],
  };
}

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(osConstants.signals).map(([name, value]) => [value, name]),
);

/**
 * What torchrun's failure report (`ChildFailedError`: `rank : 1 (local_rank: 1)` then
 * `exitcode : -9 (pid: …)`) says about the ranks that failed, killed ones first, e.g.
 * "rank 1 of 2 was killed (signal 9, SIGKILL)"; undefined when it has none.
 */
export function describeRankFailures(stderr: string, worldSize: number): string | undefined {
  const failures = new Map<number, number>();
  for (const match of stderr.matchAll(/rank\s*:\s*(\d+)[^\n]*\n\s*exitcode\s*:\s*(-?\d+)/g))
    failures.set(Number(match[1]), Number(match[2]));
  if (failures.size === 0) return undefined;
  return [...failures]
    .sort(([rankA, codeA], [rankB, codeB]) => Number(codeB < 0) - Number(codeA < 0) || rankA - rankB)
    .map(([rank, code]) => {
      if (code >= 0) return `rank ${rank} of ${worldSize} exited with code ${code}`;
      const name = SIGNAL_NAMES.get(-code);
      return `rank ${rank} of ${worldSize} was killed (signal ${-code}${name ? `, ${name}` : ''})`;
    })
    .join('; ');
}

/** What ranks that gave up wrote before exiting (`paddock worker: rank R of N: …; exiting`). */
function rankReports(stderr: string): string {
  const reports = new Set<string>();
  for (const match of stderr.matchAll(/paddock worker: (rank \d+ of \d+: [^\n]*?); exiting/g))
    reports.add(match[1]!);
  return reports.size === 0 ? '' : `; the ranks said: ${[...reports].slice(0, 4).join(' | ')}`;
}

interface Pending {
  cmd: string;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
  cleanup: () => void;
}

/** A base64 array of the protocol: little-endian int32 or float64. */
export interface EncodedArray {
  dtype: 'int32' | 'float64';
  b64: string;
}

/** Encodes integers as a base64 int32 array. */
export function encodeInt32(values: readonly number[]): EncodedArray {
  return { dtype: 'int32', b64: Buffer.from(Int32Array.from(values).buffer).toString('base64') };
}

/** Encodes numbers as a base64 float64 array. */
export function encodeFloat64(values: readonly number[]): EncodedArray {
  return { dtype: 'float64', b64: Buffer.from(Float64Array.from(values).buffer).toString('base64') };
}

export class TorchWorker {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stderrTail = '';
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private failure: PaddockError | undefined;
  private closing: Promise<void> | undefined;
  private readonly exitPromise: Promise<void>;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly options: TorchWorkerOptions,
    private readonly distributed?: DistributedRun,
  ) {
    this.exitPromise = new Promise((resolve) =>
      child.once('exit', () => {
        if (distributed) {
          // torchrun is gone: make sure no rank outlives it, whatever ended it.
          this.signalGroup('SIGKILL');
          rmSync(distributed.logDir, { recursive: true, force: true });
        }
        resolve();
      }),
    );
    // An interpreter that cannot start never exits.
    if (distributed) child.once('error', () => rmSync(distributed.logDir, { recursive: true, force: true }));
  }

  /** The worker's process id (torchrun's, under torchrun). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Ranks in all: 1, or torchrun's world size. */
  get worldSize(): number {
    return this.distributed?.worldSize ?? 1;
  }

  /** The last bytes the worker wrote to stderr. */
  get stderr(): string {
    return this.stderrTail;
  }

  /**
   * Spawns the worker and waits for its `ready` line. Rejects with TRAINER_FAILED when the
   * interpreter cannot start, the worker dies or does not get ready in time.
   */
  static async start(options: TorchWorkerOptions = {}): Promise<{ worker: TorchWorker; hello: WorkerHello }> {
    const python = options.python ?? process.env.PADDOCK_PYTHON ?? DEFAULT_PYTHON;
    const script = options.script ?? WORKER_SCRIPT;
    if (!existsSync(script)) throw trainerError(`the worker script ${script} does not exist`);
    let args = ['-u', script];
    let distributed: DistributedRun | undefined;
    const env: Record<string, string | undefined> = { ...process.env, PYTHONUNBUFFERED: '1' };
    if (options.distributed) {
      const logDir = mkdtempSync(join(tmpdir(), 'paddock-torchrun-'));
      try {
        const run = await torchrunArgs(options.distributed, script, logDir);
        args = run.args;
        distributed = { worldSize: run.worldSize, logDir };
      } catch (error) {
        rmSync(logDir, { recursive: true, force: true });
        throw error;
      }
      env.PADDOCK_DIST_BACKEND = options.distributed.backend ?? 'auto';
    }
    // Under torchrun, a process group of its own (detached), so that signalling the group
    // reaches torchrun and every rank.
    const child = spawn(python, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...env, ...options.env },
      detached: distributed !== undefined,
    });
    const worker = new TorchWorker(child, options, distributed);
    const hello = await worker.attach(python);
    return { worker, hello };
  }

  private attach(python: string): Promise<WorkerHello> {
    const tailBytes = this.options.stderrTailBytes ?? 8_192;
    // Writing to a worker that is gone fails the write (handled where it is written) and
    // emits an error on the stream, which must not become an uncaught exception.
    this.child.stdin.on('error', () => {});
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-tailBytes);
      this.options.onStderr?.(text);
    });
    return new Promise<WorkerHello>((resolve, reject) => {
      let ready = false;
      const startTimer = setTimeout(() => {
        fail(
          trainerError(`the torch worker did not start within ${this.options.startTimeoutMs ?? 120_000} ms`),
        );
      }, this.options.startTimeoutMs ?? 120_000);
      const fail = (error: PaddockError): void => {
        this.failAll(error);
        if (!ready) {
          clearTimeout(startTimer);
          reject(error);
        }
        this.kill();
      };
      this.child.once('error', (error) => {
        fail(
          trainerError(`cannot run the torch worker with ${python}: ${describeError(error)}`, {
            cause: error,
          }),
        );
      });
      this.child.once('exit', (code, signal) => {
        this.exited = { code, signal };
        // Let stderr drain (bounded) so that the message shows the worker's last words.
        const drained = new Promise<void>((resolve) => {
          if (this.child.stderr.readableEnded || this.child.stderr.destroyed) resolve();
          else this.child.stderr.once('close', () => resolve());
        });
        void Promise.race([drained, new Promise<void>((resolve) => setTimeout(resolve, 1_000).unref())]).then(
          () => {
            const { what, ranks } = this.exitReport(code, signal);
            fail(
              trainerError(`${what}${this.stderrSuffix()}`, {
                details: { exitCode: code, signal, stderr: this.stderrTail, ...(ranks ? { ranks } : {}) },
              }),
            );
          },
        );
      });
      const signal = this.options.signal;
      if (signal) {
        const onAbort = (): void => {
          const error = new PaddockError(ERROR_CODES.ABORTED, 'training was aborted', {
            cause: signal.reason,
          });
          this.failAll(error);
          if (!ready) {
            clearTimeout(startTimer);
            reject(error);
          }
          this.kill();
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
        void this.exitPromise.then(() => signal.removeEventListener('abort', onAbort));
      }
      const lines = createInterface({ input: this.child.stdout });
      lines.on('line', (line) => {
        if (line.trim() === '') return;
        let message: unknown;
        try {
          message = JSON.parse(line);
        } catch {
          fail(
            trainerError(
              `the torch worker wrote a line that is not JSON: ${line.slice(0, 200)}${this.stderrSuffix()}`,
            ),
          );
          return;
        }
        if (!ready) {
          const hello = ReadySchema.safeParse(message);
          if (!hello.success) {
            fail(trainerError(`the torch worker did not start with a ready line: ${line.slice(0, 200)}`));
            return;
          }
          ready = true;
          clearTimeout(startTimer);
          resolve(hello.data);
          return;
        }
        this.onResponse(message, line);
      });
    });
  }

  private stderrSuffix(): string {
    const tail = this.stderrTail.trim();
    return tail === '' ? '' : `; its stderr ended with:\n${tail.split('\n').slice(-30).join('\n')}`;
  }

  private onResponse(message: unknown, line: string): void {
    const parsed = ResponseSchema.safeParse(message);
    if (!parsed.success) {
      this.failAll(trainerError(`the torch worker sent an invalid response: ${line.slice(0, 200)}`));
      this.kill();
      return;
    }
    const response = parsed.data;
    const pending = response.id === null ? undefined : this.pending.get(response.id);
    if (!pending) {
      // An answer without a request (e.g. a parse error of a line we never sent) breaks the protocol.
      if (!response.ok) {
        this.failAll(
          trainerError(`the torch worker reported: ${response.error.message}${this.stderrSuffix()}`),
        );
        this.kill();
      }
      return;
    }
    this.pending.delete(response.id!);
    pending.cleanup();
    if (response.ok) pending.resolve(response.result);
    else
      pending.reject(
        trainerError(
          `the torch worker failed ${pending.cmd}: ${response.error.type}: ${response.error.message}`,
          {
            details: { type: response.error.type, traceback: response.error.traceback, command: pending.cmd },
          },
        ),
      );
  }

  private failAll(error: PaddockError): void {
    this.failure ??= error;
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.cleanup();
      pending.reject(error);
    }
  }

  /** What the worker's exit says: under torchrun, which ranks failed and what they wrote. */
  private exitReport(code: number | null, signal: NodeJS.Signals | null): { what: string; ranks?: string } {
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (!this.distributed) return { what: `the torch worker exited (${how})` };
    const ranks = describeRankFailures(this.stderrTail, this.distributed.worldSize);
    const reports = rankReports(this.stderrTail);
    if (!ranks) {
      return {
        what: `the torch worker (torchrun, ${this.distributed.worldSize} ranks) exited (${how})${reports}`,
      };
    }
    return {
      what: `the torch worker's ${ranks}; torchrun stopped the other ranks and exited (${how})${reports}`,
      ranks,
    };
  }

  private kill(): void {
    if (!this.exited && this.child.exitCode === null && this.child.signalCode === null)
      this.signal('SIGKILL');
  }

  /** Signals the worker: under torchrun, its whole process group (torchrun and every rank). */
  private signal(signal: NodeJS.Signals): void {
    if (this.distributed) this.signalGroup(signal);
    else this.child.kill(signal);
  }

  private signalGroup(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // ESRCH: the group has no process left.
    }
  }

  /**
   * Sends one request and resolves with its result. Rejects with TRAINER_FAILED when the
   * worker answers with an error, dies, or does not answer within `timeoutMs` (it is then
   * killed); with ABORTED when `signal` aborts (the worker is killed: its state is unknown).
   */
  request<T = unknown>(
    cmd: string,
    args: Record<string, unknown> = {},
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(trainerError('the torch worker is closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 1_800_000;
      const timer = setTimeout(() => {
        const error = trainerError(
          `the torch worker did not answer ${cmd} within ${timeoutMs} ms and was killed${this.stderrSuffix()}`,
          { details: { command: cmd, stderr: this.stderrTail } },
        );
        this.failAll(error);
        this.kill();
      }, timeoutMs);
      const onAbort = (): void => {
        const error = new PaddockError(ERROR_CODES.ABORTED, `${cmd} was aborted`, {
          cause: options.signal?.reason,
        });
        this.failAll(error);
        this.kill();
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        cmd,
        resolve: (value) => resolve(value as T),
        reject,
        timer,
        cleanup: () => {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
        },
      });
      if (options.signal?.aborted) {
        onAbort();
        return;
      }
      this.child.stdin.write(`${JSON.stringify({ id, cmd, ...args })}\n`, (error) => {
        if (!error) return;
        // A broken pipe mostly means that the worker is exiting: its exit, reported within a
        // second, says why (e.g. which rank died); this message is the fallback.
        setTimeout(() => {
          this.failAll(
            trainerError(`cannot write to the torch worker: ${describeError(error)}${this.stderrSuffix()}`, {
              cause: error,
            }),
          );
        }, 1_500);
      });
    });
  }

  /**
   * Stops the worker in stages: `shutdown`, then closing its stdin, SIGTERM, SIGKILL,
   * with bounded waits (under torchrun the signals go to its process group: torchrun and
   * every rank). Idempotent; never rejects.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.exited || this.child.exitCode !== null || this.child.signalCode !== null) return;
      const waitExit = (ms: number): Promise<boolean> =>
        Promise.race([
          this.exitPromise.then(() => true),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref()),
        ]);
      if (!this.failure) {
        const id = this.nextId++;
        this.child.stdin.write(`${JSON.stringify({ id, cmd: 'shutdown' })}\n`, () => {
          // A write error means the worker is gone already; the exit wait below covers it.
        });
      }
      this.child.stdin.end();
      if (await waitExit(5_000)) return;
      this.signal('SIGTERM');
      if (await waitExit(2_000)) return;
      this.signal('SIGKILL');
      await waitExit(2_000);
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
