/**
 * Long-lived processes inside a running container with piped stdio (an MCP server, a
 * language server): a dockerode exec with hijacked stdin, its multiplexed output split
 * into stdout and stderr. This is what `DockerSandbox.spawn()` runs.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, type Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { settlesWithin } from '../../harness/errors.ts';
import type { SandboxProcess } from '../../harness/sandbox.ts';
import { dockerClient, execQuietly, wrapEngineError, type EngineOptions } from './engine.ts';

/** Options of `spawnInContainer`. */
export interface SpawnInContainerOptions extends EngineOptions {
  /** Working directory. @default the container's WORKDIR */
  cwd?: string;
  /** Extra environment variables of the process. */
  env?: Record<string, string>;
  /** User to run as. @default the container's USER */
  user?: string;
  /** How long `kill()` waits after SIGTERM before SIGKILL, in ms. @default 2_000 */
  killGraceMs?: number;
}

/**
 * Wraps the command so that its pid is known (for kill) and nothing is left behind: the
 * wrapper writes its own pid, runs the command as its child (stdin passed on explicitly:
 * an asynchronous list of a non-interactive sh would read /dev/null), passes a SIGTERM on
 * to it, and removes the pid file once the command has ended by itself (`kill` removes it
 * otherwise), so that processes that come and go leave nothing in the container's /tmp.
 * `$0` is the command, `$1` the pid file.
 */
const WRAPPER = [
  'echo $$ > "$1"',
  'exec 3<&0',
  'sh -c "$0" <&3 3<&- &',
  'c=$!',
  'exec 3<&-',
  "trap 'kill -TERM $c 2>/dev/null' TERM",
  'wait $c; s=$?',
  // A trapped signal ends `wait` early: wait again until the command is gone.
  'while kill -0 $c 2>/dev/null; do wait $c; s=$?; done',
  'rm -f "$1"',
  'exit $s',
].join('\n');

/**
 * Starts `command` (run by `sh -c`) inside container `containerId`, with stdin, stdout
 * and stderr piped. Ending `stdin` closes the process's standard input. `exited`
 * resolves with the exit code when the process ends (-1 when the engine cannot say);
 * `kill()` sends SIGTERM to the process (and its process group), then SIGKILL after
 * `killGraceMs`, and resolves once it is gone. Rejects with SANDBOX_FAILED (or
 * ENGINE_UNAVAILABLE) when the exec cannot be created or started.
 */
export async function spawnInContainer(
  containerId: string,
  command: string,
  options: SpawnInContainerOptions = {},
): Promise<SandboxProcess> {
  const docker = dockerClient(options);
  const container = docker.getContainer(containerId);
  const pidFile = `/tmp/.paddock-spawn-${randomBytes(6).toString('hex')}.pid`;
  let stream: Duplex;
  let exec: Docker.Exec;
  try {
    exec = await container.exec({
      Cmd: ['sh', '-c', WRAPPER, command, pidFile],
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      ...(options.env ? { Env: Object.entries(options.env).map(([key, value]) => `${key}=${value}`) } : {}),
      ...(options.cwd ? { WorkingDir: options.cwd } : {}),
      ...(options.user ? { User: options.user } : {}),
    });
    stream = await exec.start({ hijack: true, stdin: true });
  } catch (error) {
    throw wrapEngineError(
      'SANDBOX_FAILED',
      `could not start "${command}" in container ${containerId.slice(0, 12)}`,
      error,
      {
        containerId,
      },
    );
  }

  // The engine answers the upgrade before it starts the process: wait until it runs, so
  // that what follows (a seal's sweep, a kill) sees it.
  await started(exec);

  const stdout = new PassThrough();
  const stderr = new PassThrough();
  (
    docker.modem as { demuxStream(stream: Duplex, stdout: PassThrough, stderr: PassThrough): void }
  ).demuxStream(stream, stdout, stderr);
  // A dropped connection is the end of the process as far as we can tell; it must not throw.
  stream.on('error', () => stream.destroy());

  let ended = false;
  const exited = new Promise<number>((resolve) => {
    const finish = () => {
      if (ended) return;
      ended = true;
      stdout.end();
      stderr.end();
      void exitCode(exec).then(resolve);
    };
    stream.once('end', finish);
    stream.once('close', finish);
  });

  // Ending stdin half-closes the connection: the engine closes the process's stdin, and
  // its output still flows back.
  const stdin = new PassThrough();
  stdin.pipe(stream);

  let killing: Promise<void> | undefined;
  const kill = (): Promise<void> => {
    killing ??= (async () => {
      if (ended) return;
      const grace = options.killGraceMs ?? 2_000;
      await signalProcess(container, pidFile, 'TERM');
      // While stdin is attached the engine keeps the connection open after the process
      // exits; closing our side lets it report the end.
      if (!stdin.writableEnded) stdin.end();
      if (!(await settlesWithin(exited, grace))) {
        await signalProcess(container, pidFile, 'KILL');
        await settlesWithin(exited, 1_000);
      }
      stream.destroy();
      await settlesWithin(exited, 1_000);
      await runQuiet(container, ['rm', '-f', pidFile]);
    })();
    return killing;
  };

  return { stdin, stdout, stderr, exited, kill };
}

/**
 * Signals the process whose pid the wrapper wrote and all its descendants (found through
 * /proc with shell builtins only, so that any image with a POSIX sh can do it): the shell
 * running a compound command forks the server rather than becoming it.
 */
const SIGNAL_TREE = `
pid=$(cat "$1" 2>/dev/null) || exit 0
all=$pid; list=$pid
while [ -n "$list" ]; do
  next=
  for d in /proc/[0-9]*; do
    read -r line < "$d/stat" 2>/dev/null || continue
    rest=\${line##*) }; set -- $rest
    for q in $list; do [ "$2" = "$q" ] && next="$next \${d#/proc/}"; done
  done
  all="$all$next"; list=$next
done
kill -"$0" $all 2>/dev/null; true`;

async function signalProcess(
  container: Docker.Container,
  pidFile: string,
  signal: 'TERM' | 'KILL',
): Promise<void> {
  await runQuiet(container, ['sh', '-c', SIGNAL_TREE, signal, pidFile]);
}

/** Runs a short command in the container and waits for it; errors are ignored (cleanup only). */
async function runQuiet(container: Docker.Container, cmd: string[]): Promise<void> {
  // The container may be gone already; there is nothing left to stop then.
  await execQuietly(container, cmd).catch(() => undefined);
}

/**
 * Resolves once the engine has started the exec's process (or it has already ended), or
 * after 10 s, or when the engine can no longer say. The engine writes its upgrade answer
 * before it starts the process (moby api/server/router/container/exec.go,
 * postContainerExecStart), so without this wait a seal's sweep that follows at once can
 * list the container's processes before this one exists.
 */
async function started(exec: Docker.Exec): Promise<void> {
  await inspectUntil(exec, (info) => info.Running || info.ExitCode !== null || (info.Pid ?? 0) > 0, 10_000);
}

/** The exec's exit code, once the engine reports it as finished; -1 when it cannot say. */
async function exitCode(exec: Docker.Exec): Promise<number> {
  const info = await inspectUntil(exec, (candidate) => !candidate.Running, 500);
  return typeof info?.ExitCode === 'number' ? info.ExitCode : -1;
}

/**
 * Inspects the exec until `done` holds of what the engine says (backing off from 2 ms to
 * 50 ms between calls) or `timeoutMs` has passed; `undefined` then, or when the engine
 * cannot say (the container is gone).
 */
async function inspectUntil(
  exec: Docker.Exec,
  done: (info: Docker.ExecInspectInfo) => boolean,
  timeoutMs: number,
): Promise<Docker.ExecInspectInfo | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    let info: Docker.ExecInspectInfo;
    try {
      info = await exec.inspect();
    } catch {
      return undefined;
    }
    if (done(info)) return info;
    if (Date.now() >= deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
