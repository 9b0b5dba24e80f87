/**
 * The command shells of a Docker sandbox: one long-lived `ShellSession` per user — the
 * sandbox's own, opened by the provider, and one per other user asked for by `exec`,
 * opened on first use — each replaced once when it dies.
 */
import type Docker from 'dockerode';
import { ERROR_CODES, PaddockError, describeError } from '../../harness/errors.ts';
import { wrapEngineError } from './engine.ts';
import { closedError } from './errors.ts';
import { ShellDiedError, ShellSession, ShellStartError } from './shell.ts';

/** What a `ShellPool` needs of its sandbox. */
export interface ShellPoolInit {
  container: Docker.Container;
  /** The directory shells start in. */
  workdir: string;
  /** The sandbox's user as configured (spec.user or the image's USER), '' for the image default. */
  user: string;
  /** The sandbox's own shell, already open. */
  shell: ShellSession;
  /** True once the sandbox is closing: no new shell is kept then. */
  isClosed: () => boolean;
}

/**
 * The shells of one sandbox, keyed by user: '' is the sandbox's own user (and root when
 * that is root), any other key a user name or uid as `exec`'s `user` gave it.
 */
export class ShellPool {
  private readonly shells = new Map<string, ShellSession>();

  constructor(private readonly init: ShellPoolInit) {
    this.shells.set('', init.shell);
  }

  /** The uid and gid of the sandbox's user (0 for root; 0 too while its shell is being replaced). */
  get owner(): { uid: number; gid: number } {
    const shell = this.shells.get('');
    return { uid: Math.max(0, shell?.uid ?? 0), gid: Math.max(0, shell?.gid ?? 0) };
  }

  /** The shell key of an `exec` user option: '' for the sandbox's own user. */
  keyFor(user: string | undefined): string {
    if (user === undefined || user === '' || user === this.init.user) return '';
    const own = this.shells.get('');
    if ((user === 'root' || user === '0') && own?.uid === 0) return '';
    return user;
  }

  /**
   * The live shell of `key`: the one kept, restarted once if it died between commands, or
   * a new one for a user not seen before.
   * @throws ShellStartError for an unknown user (key ≠ ''; the caller's data), PaddockError
   *   SANDBOX_FAILED (no shell starts), SANDBOX_CLOSED.
   */
  async get(key: string): Promise<ShellSession> {
    const existing = this.shells.get(key);
    if (existing?.alive) return existing;
    if (existing) {
      // The shell died between commands: restart it once.
      await this.recover(key, new ShellDiedError('the shell exited'));
      const restarted = this.shells.get(key);
      if (restarted?.alive) return restarted;
      throw new PaddockError(ERROR_CODES.SANDBOX_FAILED, `the sandbox ${this.shortId} has no shell`);
    }
    let shell: ShellSession;
    try {
      shell = await this.open(key);
    } catch (error) {
      // An unknown user is the caller's data (exec answers 126); anything else is a fault.
      if (error instanceof PaddockError || (error instanceof ShellStartError && key !== '')) throw error;
      throw wrapEngineError(
        ERROR_CODES.SANDBOX_FAILED,
        `no shell could be started in the sandbox ${this.shortId}`,
        error,
        { containerId: this.init.container.id },
      );
    }
    if (this.init.isClosed()) {
      shell.close();
      throw closedError();
    }
    this.shells.set(key, shell);
    return shell;
  }

  /**
   * Replaces a dead shell once. @throws PaddockError SANDBOX_CLOSED when the sandbox
   * closed meanwhile, SANDBOX_FAILED when no new shell starts (the container stopped, the
   * engine went away), naming the container's state.
   */
  async recover(key: string, cause: unknown): Promise<void> {
    if (this.init.isClosed()) throw closedError();
    this.shells.get(key)?.close();
    this.shells.delete(key);
    try {
      const shell = await this.open(key);
      if (this.init.isClosed()) {
        shell.close();
        throw closedError();
      }
      this.shells.set(key, shell);
    } catch (error) {
      if (error instanceof PaddockError) throw error;
      const state = await this.init.container.inspect().then(
        (info) =>
          info.State.Running
            ? 'running'
            : `stopped (${info.State.Status}, OOMKilled=${info.State.OOMKilled})`,
        () => 'gone',
      );
      throw new PaddockError(
        ERROR_CODES.SANDBOX_FAILED,
        `the sandbox ${this.shortId} lost its shell (${describeError(cause)}) and could not start a new one: ${describeError(error)}; the container is ${state}`,
        { cause: error, retryable: false, details: { containerId: this.init.container.id, state } },
      );
    }
  }

  /** Closes every shell, keeping them listed (a closing sandbox). */
  closeAll(): void {
    for (const shell of this.shells.values()) shell.close();
  }

  /** Closes and forgets every shell: the next command starts a new one (a sealed sandbox). */
  retireAll(): void {
    this.closeAll();
    this.shells.clear();
  }

  private open(key: string): Promise<ShellSession> {
    return ShellSession.open(this.init.container, {
      ...(key ? { user: key } : this.init.user ? { user: this.init.user } : {}),
      workdir: this.init.workdir,
    });
  }

  private get shortId(): string {
    return this.init.container.id.slice(0, 12);
  }
}
