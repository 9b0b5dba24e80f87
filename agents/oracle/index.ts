/**
 * The oracle agent: plays the task's reference solution through the same tools any agent
 * uses, so that a task author can check that the task is solvable and its verifier fair.
 *
 * - a `script` solution: turn 0 writes the solution's files (base64 through bash, so any
 *   content survives) and runs its command; turn 1 submits;
 * - an `actions` solution: one reference tool call per turn, then submit.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  ERROR_CODES,
  PaddockError,
  type Agent,
  type AgentInput,
  type AssistantTurn,
  type FileMount,
  type AgentSession,
  type EpisodeContext,
  type Task,
  type ToolCall,
} from '../../harness/index.ts';

function call(turnIndex: number, index: number, name: string, args: unknown): ToolCall {
  return { id: `oracle_${turnIndex}_${index}`, name, arguments: JSON.stringify(args) };
}

function quote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Lists every file under a mount as [host file, sandbox path]. */
function filesOf(mount: FileMount): [string, string][] {
  if (!statSync(mount.hostPath).isDirectory()) return [[mount.hostPath, mount.sandboxPath]];
  return readdirSync(mount.hostPath, { withFileTypes: true }).flatMap((entry) =>
    filesOf({
      hostPath: join(mount.hostPath, entry.name),
      sandboxPath: `${mount.sandboxPath}/${entry.name}`,
    }),
  );
}

/** A bash command that recreates the files of `mounts` in the sandbox. */
export function writeFilesCommand(mounts: readonly FileMount[]): string {
  const lines: string[] = [];
  for (const mount of mounts) {
    for (const [hostFile, sandboxPath] of filesOf(mount)) {
      const parent = sandboxPath.slice(0, sandboxPath.lastIndexOf('/')) || '/';
      const mode = (statSync(hostFile).mode & 0o111) !== 0 ? '755' : '644';
      lines.push(`mkdir -p ${quote(parent)}`);
      lines.push(
        `base64 -d > ${quote(sandboxPath)} <<'PADDOCK_EOF'`,
        readFileSync(hostFile).toString('base64'),
        'PADDOCK_EOF',
      );
      lines.push(`chmod ${mode} ${quote(sandboxPath)}`);
    }
  }
  return lines.join('\n');
}

function noSolution(task: Task): PaddockError {
  return new PaddockError(
    ERROR_CODES.CONFIG_INVALID,
    `task ${task.id} has no reference solution for the oracle to run`,
  );
}

export class OracleAgent implements Agent {
  readonly name = 'oracle';

  /**
   * Opens the oracle for one episode. A script solution's files are copied into the
   * sandbox through its file API, owned by the sandbox's user (as Harbor copies
   * `solution/` in), so that a non-root agent user can write and run them; the first turn
   * then only runs the command. Multi-step tasks give each step its own solution, written
   * by the turn itself.
   */
  async open(episode: EpisodeContext): Promise<AgentSession> {
    const { task, sandbox, signal } = episode;
    const solution = task.solution;
    let uploaded = false;
    if (sandbox && solution?.kind === 'script' && task.steps === undefined) {
      for (const mount of solution.files) await sandbox.upload(mount.hostPath, mount.sandboxPath, { signal });
      uploaded = true;
    }
    return {
      act: async (input) => {
        const turn = oracleTurn(input, uploaded);
        uploaded = false;
        return resolveReferences(turn, episode);
      },
    };
  }

  /**
   * Checks before a run that every task has a reference solution to play: one problem per
   * task without one (the CLI refuses the run, or skips those tasks with `--skip-invalid`).
   */
  checkTasks(tasks: readonly Task[]): { taskId: string; message: string }[] {
    return tasks
      .filter((task) => task.solution === undefined)
      .map((task) => ({
        taskId: task.id,
        message: `task ${task.id} has no reference solution for the oracle (solution/solve.sh, or solution: in task.yaml)`,
      }));
  }
}

/**
 * Lets the episode's tool sessions resolve what a reference call names on the state as it
 * is now (a browser session turns `at: { selector }` into the element's coordinates), so
 * that a solution written ahead of time can act in coordinates.
 */
async function resolveReferences(turn: AssistantTurn, episode: EpisodeContext): Promise<AssistantTurn> {
  const sessions = [...episode.sessions.values()].filter((session) => session.resolveReference !== undefined);
  if (sessions.length === 0) return turn;
  const toolCalls: ToolCall[] = [];
  for (const toolCall of turn.toolCalls) {
    let args = JSON.parse(toolCall.arguments) as Record<string, unknown>;
    for (const session of sessions) {
      const resolved = await session.resolveReference!(
        { name: toolCall.name, arguments: args },
        { signal: episode.signal },
      );
      if (resolved) args = resolved;
    }
    toolCalls.push({ ...toolCall, arguments: JSON.stringify(args) });
  }
  return { ...turn, toolCalls };
}

/** The oracle's turn: the solution's next action, or its command (files written unless `uploaded`). */
function oracleTurn({ task, turnIndex }: AgentInput, uploaded: boolean): AssistantTurn {
  const solution = task.solution;
  if (!solution) throw noSolution(task);
  const submit = { text: null, toolCalls: [call(turnIndex, 0, 'submit', {})] };
  if (solution.kind === 'actions') {
    const action = solution.actions[turnIndex];
    if (!action) return submit;
    return { text: null, toolCalls: [call(turnIndex, 0, action.tool, action.arguments)] };
  }
  if (turnIndex > 0) return submit;
  const exports = Object.entries(solution.env).map(([key, value]) => `export ${key}=${quote(value)}`);
  const command = [uploaded ? '' : writeFilesCommand(solution.files), ...exports, solution.command]
    .filter(Boolean)
    .join('\n');
  const timeoutSec = Math.min(3600, Math.max(1, Math.floor(task.limits.timeoutMs / 1000)));
  return { text: null, toolCalls: [call(turnIndex, 0, 'bash', { command, timeout_sec: timeoutSec })] };
}
