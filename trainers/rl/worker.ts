/**
 * The TypeScript side of the PyTorch worker (trainers/torch/worker.py): spawns it,
 * speaks its newline-delimited JSON protocol (trainers/torch/PROTOCOL.md), and supervises
 * it. A worker that exits, is killed, breaks the protocol or does not answer in time
 * fails every pending request with TRAINER_FAILED carrying the tail of its stderr —
 * never a hang.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
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
   * rendezvous), gradients averaged across ranks. Rank 0 speaks the protocol; the others
   * take each request from it. Absent: one process, as before.
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
  ) {
    this.exitPromise = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** The worker's process id. */
  get pid(): number | undefined {
    return this.child.pid;
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
    const child = spawn(python, ['-u', script], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1', ...options.env },
    });
    const worker = new TorchWorker(child, options);
    const hello = await worker.attach(python);
    return { worker, hello };
  }

  private attach(python: string): Promise<WorkerHello> {
    const tailBytes = this.options.stderrTailBytes ?? 8_192;
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
        // Give stderr a moment to drain so that the message shows the worker's last words.
        setTimeout(() => {
          fail(
            trainerError(
              `the torch worker exited (${signal ? `signal ${signal}` : `code ${code}`})${this.stderrSuffix()}`,
              { details: { exitCode: code, signal, stderr: this.stderrTail } },
            ),
          );
        }, 50);
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

  private kill(): void {
    if (!this.exited && this.child.exitCode === null && this.child.signalCode === null)
      this.child.kill('SIGKILL');
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
        if (error)
          this.failAll(
            trainerError(`cannot write to the torch worker: ${describeError(error)}${this.stderrSuffix()}`),
          );
      });
    });
  }

  /**
   * Stops the worker in stages: `shutdown`, then closing its stdin, SIGTERM, SIGKILL,
   * with bounded waits. Idempotent; never rejects.
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
      this.child.kill('SIGTERM');
      if (await waitExit(2_000)) return;
      this.child.kill('SIGKILL');
      await waitExit(2_000);
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
