/**
 * Test fakes at the edge of the harness: an in-memory Sandbox whose commands are answered
 * by a handler, and a provider that starts them (or fails, on cue). No Docker needed.
 */
import type {
  EnvironmentSpec,
  ExecOptions,
  ExecResult,
  Sandbox,
  SandboxLabels,
  SandboxProvider,
  SealReport,
} from '../../harness/index.ts';
import { PaddockError } from '../../harness/index.ts';

export type CommandHandler = (
  command: string,
  sandbox: MemorySandbox,
  options: ExecOptions,
) => Partial<ExecResult> | Promise<Partial<ExecResult>>;

export class MemorySandbox implements Sandbox {
  readonly workdir = '/app';
  readonly files = new Map<string, Uint8Array>();
  readonly commands: { command: string; options: ExecOptions }[] = [];
  closed = 0;
  /** How many commands had run when `seal` was called, for each call. */
  readonly seals: number[] = [];

  constructor(
    readonly id: string,
    private readonly handler: CommandHandler,
  ) {}

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (this.closed > 0) throw new PaddockError('SANDBOX_CLOSED', 'closed');
    this.commands.push({ command, options });
    const result = await this.handler(command, this, options);
    return {
      exitCode: 0,
      stdout: '',
      stderr: '',
      timedOut: false,
      truncated: false,
      durationMs: 0,
      ...result,
    };
  }

  async readFile(path: string): Promise<Uint8Array> {
    const data = this.files.get(path);
    // As the Sandbox contract says: a missing path is the caller's input, not a sandbox fault.
    if (!data) throw new PaddockError('FILE_NOT_FOUND', `no such file: ${path}`, { details: { path } });
    return data;
  }

  async writeFile(path: string, data: string | Uint8Array): Promise<void> {
    this.files.set(path, typeof data === 'string' ? Buffer.from(data) : data);
  }

  async upload(hostPath: string, sandboxPath: string): Promise<void> {
    this.files.set(sandboxPath, Buffer.from(`uploaded from ${hostPath}`));
  }

  /** Records each call (when in the commands it came); an in-memory sandbox has no processes to stop. */
  async seal(): Promise<SealReport> {
    if (this.closed > 0) throw new PaddockError('SANDBOX_CLOSED', 'closed');
    this.seals.push(this.commands.length);
    return { method: 'in memory: nothing to stop', killed: 0, restored: [], warnings: [], durationMs: 0 };
  }

  async close(): Promise<void> {
    this.closed++;
  }
}

export class MemorySandboxProvider implements SandboxProvider {
  readonly kind = 'memory';
  readonly started: { sandbox: MemorySandbox; labels: SandboxLabels; spec: EnvironmentSpec }[] = [];
  /** Start failures still to produce (each a retryable SANDBOX_START_FAILED). */
  failuresLeft = 0;

  constructor(private readonly handler: CommandHandler = () => ({})) {}

  async start(spec: EnvironmentSpec, options: { labels: SandboxLabels }): Promise<MemorySandbox> {
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw new PaddockError('SANDBOX_START_FAILED', 'engine hiccup', { retryable: true });
    }
    const sandbox = new MemorySandbox(`mem-${this.started.length}`, this.handler);
    this.started.push({ sandbox, labels: options.labels, spec });
    return sandbox;
  }
}
