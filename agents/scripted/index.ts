/**
 * The scripted agent: plays fixed turns from a file or an object — for tests, demos and
 * reproducing a trajectory. After its turns run out it answers with a text-only turn,
 * which ends the episode.
 *
 * File format (YAML or JSON); `agents/scripted/example.yaml` is a complete, commented
 * example that solves `examples/word-frequency`, and the README's "Scripted agent" section
 * runs it:
 * ```yaml
 * turns:                       # used for every task without its own entry
 *   - text: "Listing files"
 *     tool_calls:
 *       - { name: bash, arguments: { command: ls } }   # an object is sent as JSON
 *       - { name: bash, arguments: '{"command": '  }   # a string is sent as is (e.g. invalid JSON)
 *     usage: { prompt_tokens: 300, completion_tokens: 20 }   # optional: tokens the turn reports
 * tasks:                       # optional, per task id
 *   examples/fix-bug: { turns: [...] }
 * ```
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import {
  ERROR_CODES,
  PaddockError,
  describeError,
  formatZodIssues,
  type Agent,
  type AgentInput,
  type AgentSession,
  type EpisodeContext,
  type AssistantTurn,
  type Task,
  type Usage,
} from '../../harness/index.ts';

const ScriptedTurnSchema = z
  .object({
    text: z.string().nullable().optional(),
    tool_calls: z
      .array(
        z
          .object({
            id: z.string().optional(),
            name: z.string().min(1),
            arguments: z.union([z.string(), z.record(z.string(), z.unknown())]).default({}),
          })
          .strict(),
      )
      .default([]),
    usage: z
      .object({ prompt_tokens: z.number().int().min(0), completion_tokens: z.number().int().min(0) })
      .strict()
      .optional(),
  })
  .strict();

export const ScriptSchema = z
  .object({
    turns: z.array(ScriptedTurnSchema).default([]),
    tasks: z.record(z.string(), z.object({ turns: z.array(ScriptedTurnSchema) }).strict()).default({}),
  })
  .strict();

export type Script = z.input<typeof ScriptSchema>;

export class ScriptedAgent implements Agent {
  readonly name: string;
  private readonly script: z.output<typeof ScriptSchema>;
  /** Every input the agent was given, in order, with its episode's id and seed (for tests). */
  readonly calls: (AgentInput & { episodeId: string; seed: number })[] = [];

  constructor(script: Script, name = 'scripted') {
    const parsed = ScriptSchema.safeParse(script);
    if (!parsed.success)
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `invalid script:\n${formatZodIssues(parsed.error.issues)}`,
      );
    this.script = parsed.data;
    this.name = name;
  }

  /** Loads a script file (YAML or JSON). Rejects with CONFIG_INVALID naming the file and field. */
  static fromFile(path: string): ScriptedAgent {
    let data: unknown;
    try {
      data = parseYaml(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${path}: ${describeError(error)}`, {
        cause: error,
      });
    }
    const parsed = ScriptSchema.safeParse(data);
    if (!parsed.success) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${path}: invalid script:\n${formatZodIssues(parsed.error.issues)}`,
        {
          details: { file: path },
        },
      );
    }
    return new ScriptedAgent(parsed.data, `scripted:${path}`);
  }

  /**
   * Checks before a run that every per-task key of the script names a task: a key that
   * matches none (a typo, a path form that gives another id) would silently fall back to
   * the default turns. `known` are further ids that count as tasks though not run (the
   * folders a `--task` selection left out; a dataset folder's id covers its rows).
   * Returns one problem naming every unknown key, or none.
   */
  checkTasks(tasks: readonly Task[], known: readonly string[] = []): { message: string }[] {
    const ids = new Set(tasks.map((task) => task.id));
    const folders = new Set(known);
    const unknown = Object.keys(this.script.tasks).filter(
      (key) => !ids.has(key) && !folders.has(key) && !folders.has(key.split('@')[0]!),
    );
    if (unknown.length === 0) return [];
    const sample = [...ids].slice(0, 5).join(', ');
    return [
      {
        message:
          `${this.name}: per-task key(s) ${unknown.map((key) => `"${key}"`).join(', ')} match no task` +
          ` (task ids: ${sample}${ids.size > 5 ? ', …' : ''})`,
      },
    ];
  }

  /** Opens the script for one episode: its turns are the task's (a per-task key) or the default ones. */
  open(episode: EpisodeContext): AgentSession {
    return {
      act: async (input) => {
        this.calls.push({ ...input, episodeId: episode.episodeId, seed: episode.seed });
        return this.turn(input);
      },
    };
  }

  private turn(input: AgentInput): AssistantTurn {
    const turns = this.script.tasks[input.task.id]?.turns ?? this.script.turns;
    const turn = turns[input.turnIndex];
    if (!turn) return { text: 'Done.', toolCalls: [] };
    const usage: Usage | undefined = turn.usage && {
      promptTokens: turn.usage.prompt_tokens,
      completionTokens: turn.usage.completion_tokens,
    };
    return {
      text: turn.text ?? null,
      toolCalls: turn.tool_calls.map((toolCall, index) => ({
        id: toolCall.id ?? `scripted_${input.turnIndex}_${index}`,
        name: toolCall.name,
        arguments:
          typeof toolCall.arguments === 'string' ? toolCall.arguments : JSON.stringify(toolCall.arguments),
      })),
      ...(usage ? { usage } : {}),
    };
  }
}
