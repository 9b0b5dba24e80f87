/**
 * The Tool contract: something an agent can call by name with JSON arguments.
 * Tools come from sandboxes (bash, files), browsers, MCP servers and built-ins (submit).
 * A failing tool call is an observation for the agent, never an exception.
 */
import { z } from 'zod';
import type { Sandbox } from './sandbox.ts';

/** An image in an observation (a screenshot, an MCP image result). */
export interface ImagePart {
  mimeType: string;
  /** The image bytes, base64-encoded. */
  dataBase64: string;
}

/** What a tool call returns to the agent. */
export interface ToolOutput {
  /** The observation text the agent sees. */
  text: string;
  images?: ImagePart[];
  /** True when the call failed (bad arguments, a failing command, a tool error). */
  isError?: boolean;
  /** True when the call failed because its arguments did not fit the tool's schema. */
  invalidArguments?: boolean;
  /** True when this call ends the agent's part of the episode (the `submit` tool). */
  stop?: boolean;
  /** The agent's final answer, when the call submitted one. */
  answer?: string;
}

/** What a tool may use while it runs. */
export interface ToolContext {
  /** Aborted when the episode is cancelled or runs out of time. */
  signal: AbortSignal;
  /** The episode's sandbox, when the task has one. */
  sandbox?: Sandbox;
  episodeId: string;
  turnIndex: number;
}

/** A JSON Schema object describing a tool's arguments, as model APIs take it. */
export type JsonSchema = Record<string, unknown>;

export interface Tool {
  /** The name the agent calls, `^[a-zA-Z0-9_-]{1,64}$` (MCP tools are `server__tool`). */
  readonly name: string;
  /** What the tool does, for the model. */
  readonly description: string;
  /** JSON Schema (type `object`) of the arguments. */
  readonly inputSchema: JsonSchema;
  /**
   * Runs the tool. `args` is the parsed JSON the agent sent, not yet validated: the tool
   * validates it and answers invalid arguments with an `isError` output naming the field.
   * Rejects only on infrastructure faults or abort.
   */
  execute(args: unknown, context: ToolContext): Promise<ToolOutput>;
}

/** The part of a tool an agent sees: name, description, argument schema. */
export interface ToolSpec {
  name: string;
  description: string;
  inputSchema: JsonSchema;
}

export function toolSpec(tool: Tool): ToolSpec {
  return { name: tool.name, description: tool.description, inputSchema: tool.inputSchema };
}

/** Formats zod issues as `field.path: message` lines for an observation or an error. */
export function formatZodIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map(
      (issue) => `${issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)'}: ${issue.message}`,
    )
    .join('\n');
}

/**
 * Builds a Tool whose arguments are described and validated by a zod object schema.
 * Invalid arguments become an `isError` observation listing each bad field.
 */
export function defineTool<Schema extends z.ZodObject>(definition: {
  name: string;
  description: string;
  args: Schema;
  execute(args: z.infer<Schema>, context: ToolContext): Promise<ToolOutput>;
}): Tool {
  const { $schema: _ignored, ...inputSchema } = z.toJSONSchema(definition.args, { io: 'input' });
  return {
    name: definition.name,
    description: definition.description,
    inputSchema,
    async execute(args, context) {
      const parsed = definition.args.safeParse(args ?? {});
      if (!parsed.success) {
        return {
          text: `Invalid arguments for ${definition.name}:\n${formatZodIssues(parsed.error.issues)}`,
          isError: true,
          invalidArguments: true,
        };
      }
      return definition.execute(parsed.data, context);
    },
  };
}
