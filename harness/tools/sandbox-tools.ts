/**
 * The built-in tools that work on any Sandbox: bash, read_file, write_file, edit_file.
 * Each validates its arguments with zod, and what the agent caused — a failing command, a
 * missing file, a file too large to read — is an observation (isError), not an exception.
 * A fault of the sandbox itself (SANDBOX_FAILED, SANDBOX_CLOSED, an abort) propagates, so
 * that the episode ends as an `infra-error` (retried when retryable) instead of being
 * recorded, and trained on, as the agent's outcome.
 */
import { z } from 'zod';
import { ERROR_CODES, describeError, isPaddockError } from '../errors.ts';
import type { ExecResult, Sandbox } from '../sandbox.ts';
import { defineTool, type Tool, type ToolContext, type ToolOutput } from '../tool.ts';

/** Largest part of a file read_file returns, in bytes. */
const MAX_READ_BYTES = 64 * 1024;
/**
 * Largest file read_file and edit_file read at all: larger ones are an observation, so
 * that paddock's memory stays bounded whatever the agent points them at.
 */
const MAX_FILE_BYTES = 8 * 1024 * 1024;

function requireSandbox(context: ToolContext): Sandbox {
  if (!context.sandbox) throw new Error('this tool needs a sandbox, and the task has none');
  return context.sandbox;
}

/** Formats an exec result as the observation text models see. */
export function formatExecResult(result: ExecResult): string {
  const parts: string[] = [];
  if (result.stdout.length > 0) parts.push(result.stdout.trimEnd());
  if (result.stderr.length > 0) parts.push(`[stderr]\n${result.stderr.trimEnd()}`);
  if (result.timedOut)
    parts.push(`[the command timed out after ${Math.round(result.durationMs / 1000)} s and was killed]`);
  if (result.killedBy === 'memory-limit')
    parts.push("[the command was killed: it ran out of the sandbox's memory]");
  if (result.truncated) parts.push('[output truncated]');
  parts.push(`[exit code ${result.exitCode}]`);
  return parts.join('\n');
}

/**
 * `bash`: runs a command in the sandbox's persistent shell session.
 * @param defaultTimeoutMs timeout used when the call gives none
 */
export function bashTool(defaultTimeoutMs: number): Tool {
  return defineTool({
    name: 'bash',
    description:
      'Run a bash command in the sandbox and return its stdout, stderr and exit code. ' +
      'Each call starts in the working directory; chain with && or cd inside the command.',
    args: z
      .object({
        command: z.string().min(1).describe('The command to run with bash -c.'),
        timeout_sec: z
          .number()
          .positive()
          .max(3600)
          .optional()
          .describe('Kill the command after this many seconds.'),
      })
      .strict(),
    async execute(args, context): Promise<ToolOutput> {
      const result = await requireSandbox(context).exec(args.command, {
        timeoutMs: args.timeout_sec === undefined ? defaultTimeoutMs : args.timeout_sec * 1000,
        signal: context.signal,
      });
      return { text: formatExecResult(result), isError: result.exitCode !== 0 };
    },
  });
}

/**
 * True for a file fault the agent's own input caused: a path that does not exist or is
 * not a regular file (FILE_NOT_FOUND), a file over the read cap (SANDBOX_FAILED with
 * `details.tooLarge`), a write the sandbox's filesystem refused (SANDBOX_FAILED with
 * `details.refused`: a busy mount, a full disk). Nothing else is: a vanished container, a
 * dead engine, a closed sandbox and an abort are faults of the infrastructure.
 */
export function isAgentFileFault(error: unknown): boolean {
  if (isPaddockError(error, ERROR_CODES.FILE_NOT_FOUND)) return true;
  return (
    isPaddockError(error, ERROR_CODES.SANDBOX_FAILED) &&
    (error.details.tooLarge === true || error.details.refused === true)
  );
}

/** Turns a file fault the agent caused into an observation; rethrows every other fault. */
function fileProblem(error: unknown, path: string): ToolOutput {
  if (isAgentFileFault(error))
    return { text: `Cannot access ${path}: ${describeError(error)}`, isError: true };
  throw error;
}

export const readFileTool: Tool = defineTool({
  name: 'read_file',
  description: `Read a text file from the sandbox (at most ${MAX_READ_BYTES} bytes are returned).`,
  args: z
    .object({
      path: z.string().min(1).describe('Path of the file; relative paths start at the working directory.'),
    })
    .strict(),
  async execute(args, context) {
    const sandbox = requireSandbox(context);
    const path = resolvePath(sandbox, args.path);
    let bytes: Uint8Array;
    try {
      bytes = await sandbox.readFile(path, { signal: context.signal, maxBytes: MAX_FILE_BYTES });
    } catch (error) {
      return fileProblem(error, path);
    }
    const text = Buffer.from(bytes.subarray(0, MAX_READ_BYTES)).toString('utf8');
    return {
      text: bytes.length > MAX_READ_BYTES ? `${text}\n[file truncated: ${bytes.length} bytes in all]` : text,
    };
  },
});

export const writeFileTool: Tool = defineTool({
  name: 'write_file',
  description:
    'Create or overwrite a file in the sandbox with the given content (parent folders are created).',
  args: z
    .object({
      path: z.string().min(1).describe('Path of the file; relative paths start at the working directory.'),
      content: z.string().describe('The whole new content of the file.'),
    })
    .strict(),
  async execute(args, context) {
    const sandbox = requireSandbox(context);
    const path = resolvePath(sandbox, args.path);
    try {
      await sandbox.writeFile(path, args.content, { signal: context.signal });
    } catch (error) {
      return fileProblem(error, path);
    }
    return { text: `Wrote ${Buffer.byteLength(args.content)} bytes to ${path}` };
  },
});

export const editFileTool: Tool = defineTool({
  name: 'edit_file',
  description:
    'Replace one exact occurrence of old_text with new_text in a file. Fails when old_text occurs zero or several times.',
  args: z
    .object({
      path: z.string().min(1),
      old_text: z.string().min(1).describe('Text to find; must occur exactly once.'),
      new_text: z.string().describe('Replacement text.'),
    })
    .strict(),
  async execute(args, context) {
    const sandbox = requireSandbox(context);
    const path = resolvePath(sandbox, args.path);
    let content: string;
    try {
      content = Buffer.from(
        await sandbox.readFile(path, { signal: context.signal, maxBytes: MAX_FILE_BYTES }),
      ).toString('utf8');
    } catch (error) {
      return fileProblem(error, path);
    }
    const first = content.indexOf(args.old_text);
    if (first < 0) return { text: `old_text was not found in ${path}`, isError: true };
    if (content.indexOf(args.old_text, first + 1) >= 0) {
      return { text: `old_text occurs more than once in ${path}; include more context`, isError: true };
    }
    const updated = content.slice(0, first) + args.new_text + content.slice(first + args.old_text.length);
    try {
      await sandbox.writeFile(path, updated, { signal: context.signal });
    } catch (error) {
      return fileProblem(error, path);
    }
    return { text: `Edited ${path}` };
  },
});

function resolvePath(sandbox: Sandbox, path: string): string {
  if (path.startsWith('/')) return path;
  return `${sandbox.workdir.replace(/\/$/, '')}/${path}`;
}
