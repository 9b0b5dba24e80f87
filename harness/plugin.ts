/**
 * The one shape of a plug-in. Everything paddock can be extended with — sandbox kinds,
 * agent kinds, sections of task files, tool providers, reward kinds, the reward builder —
 * comes to it as a `PaddockPlugin`; the composition root (`createPaddock` in `cli/`) is
 * the one place that puts plug-ins together, and the built-in ones are plug-ins like any
 * other. A plug-in written outside the repository is a module whose default export is a
 * plug-in (or a list of them): `paddock run … --plugin ./my-plugin.js --sandbox my-kind`.
 *
 * What a plug-in gives is in two parts: what it *is* (kinds and sections, looked up by
 * name before anything runs) and what it *opens for a run* (`open`: tool providers,
 * reward kinds and rewards that hold resources — a browser, MCP servers, judge models —
 * closed when the run ends).
 *
 * Start-up stays light: a plug-in module may declare its kinds with static metadata and
 * import what implements them when first used (`await import()` inside `create`, `open`,
 * a section's `load`), so that `paddock --help` loads no engine client, browser driver or
 * schema library it does not run.
 */
import type { Agent } from './agent.ts';
import type { ToolProvider } from './environment.ts';
import type { EpisodeRewards, TurnRewardFunction } from './reward.ts';
import type { SandboxProvider } from './sandbox.ts';
import type { Task } from './task.ts';
import type { z } from 'zod';

/** What a sandbox kind is made with for one run. */
export interface SandboxKindOptions {
  /** Registry image → local image substitutions (`--image-map`). */
  imageMap: Record<string, string>;
  /** Called once per message about a task field the sandbox does not honour. */
  onWarning?: (message: string) => void;
  /**
   * Called with a line of progress of slow set-up the run waits on (an image build's
   * steps); one line per call, without its newline.
   */
  onProgress?: (line: string) => void;
}

/** A provider made by a sandbox kind: a `SandboxProvider` that can remove every sandbox it started. */
export interface RunSandboxProvider extends SandboxProvider {
  /** Removes every sandbox this provider started and still holds (a run stopping). Idempotent. */
  closeAll?(): Promise<void>;
}

/** A kind of sandbox (`--sandbox <name>`): Docker containers, a remote VM service, … */
export interface SandboxKind {
  /** One line for help texts. */
  readonly description: string;
  /** Makes the provider of one run. */
  create(options: SandboxKindOptions): RunSandboxProvider;
  /**
   * Checks that sandboxes can be started here at all (the engine answers), before a run
   * starts; rejects with ENGINE_UNAVAILABLE and a message a person can act on. Optional.
   */
  check?(options: { signal?: AbortSignal }): Promise<void>;
  /**
   * Removes what a crashed process of run `runId` left behind (containers, networks);
   * `resume` calls it before running what is missing. Optional.
   */
  reap?(runId: string): Promise<void>;
}

/** What an agent kind is given besides the argument of its spec. */
export interface AgentKindContext {
  /** The whole spec, e.g. `openai:gpt-4.1?temperature=0`. */
  spec: string;
  /** The environment to read base URLs and keys from. */
  env: NodeJS.ProcessEnv;
}

/** A kind of agent: the part of an `--agent` spec before the first colon. */
export interface AgentKind {
  /** How a spec of this kind is written, for help texts, e.g. `scripted:<file>`. */
  readonly usage: string;
  /** Whether the spec needs an argument after the colon (`scripted:<file>`). @default false */
  readonly needsArgument?: boolean;
  /** Makes the agent; rejects with CONFIG_INVALID naming what is wrong with the spec. */
  create(argument: string, context: AgentKindContext): Agent | Promise<Agent>;
}

/**
 * A named turn reward that task files can ask for (the browser's `page:` entries of the
 * `rewards:` section): made per task by the reward builder.
 */
export type TurnRewardKind = (
  task: Task,
  options: {
    name: string;
    weight: number;
    /** `page:` entries: pay the change of the score, or the score. */
    mode?: 'delta' | 'value';
    /** `grounding:` entries: which formula scores a point. */
    kind?: string;
  },
) => TurnRewardFunction;

/** What a plug-in's `open` is given: the other plug-ins, as far as a run needs them. */
export interface PluginRunContext {
  /** Makes an agent from a spec through every registered agent kind (a judge model). */
  createAgent(spec: string): Promise<Agent>;
  /** A reward kind that some plug-in opened for this run, by name. */
  turnRewardKind(name: string): TurnRewardKind | undefined;
  /** A folder for caches that outlive the run (judge verdicts). */
  cacheDir: string;
}

/** The reward functions of each task, as a reward plug-in builds them from the task's sections. */
export interface RewardBuilder {
  /** The rewards of `task`; rejects with TASK_INVALID / CONFIG_INVALID naming what cannot be built. */
  rewardsFor(task: Task): Promise<EpisodeRewards>;
}

/** What a plug-in opened for one run; closed when the run ends, whatever happened. */
export interface PluginRun {
  /** Tool providers: opened per episode for the tasks that use them. */
  toolProviders?: readonly ToolProvider[];
  /** Named turn rewards task files may ask for. */
  turnRewardKinds?: Readonly<Record<string, TurnRewardKind>>;
  /** Builds the rewards of each task; the parts of several builders are put together. */
  rewards?: RewardBuilder;
  /** Releases what the run held (browsers, servers, models). Idempotent; never rejects. */
  close?(): Promise<void>;
}

/**
 * A task-file section whose schema is imported when task files are first read, not when
 * the plug-in is registered: `{ load: async () => (await import('./schema.ts')).mySection }`.
 */
export interface LazyTaskSection {
  /** Imports and returns the section's schema; called once, when tasks are first loaded. */
  load(): Promise<z.ZodType>;
}

/** How a plug-in gives the schema of a task-file section: the schema, or a `LazyTaskSection`. */
export type TaskSection = z.ZodType | LazyTaskSection;

/** True when `section` is a `LazyTaskSection` (a `load` function, and not itself a schema). */
export function isLazyTaskSection(section: TaskSection): section is LazyTaskSection {
  return (
    typeof (section as Partial<LazyTaskSection>).load === 'function' &&
    typeof (section as Partial<z.ZodType>).safeParse !== 'function'
  );
}

export interface PaddockPlugin {
  /** A short name for messages, e.g. `docker`, `browser`. */
  readonly name: string;
  /** Sandbox kinds, by the name `--sandbox` takes. */
  readonly sandboxes?: Readonly<Record<string, SandboxKind>>;
  /** Agent kinds, by the part of the spec before the colon. */
  readonly agents?: Readonly<Record<string, AgentKind>>;
  /**
   * Sections the plug-in adds to task files, by key (`browser:`, `mcp_servers:`), each
   * validated by its own schema into `Task.extensions[key]`. A schema may be given lazily
   * (`LazyTaskSection`), imported when tasks are first loaded.
   */
  readonly taskSections?: Readonly<Record<string, TaskSection>>;
  /**
   * Opens what the plug-in needs for one run (evaluation, resume, training, a served
   * episode). Called once per run, after every plug-in is registered; `close` of what it
   * returns is called when the run ends. Optional.
   */
  open?(context: PluginRunContext): PluginRun | Promise<PluginRun>;
}

/** Gives a plug-in its type (a plain object works too). */
export function definePlugin(plugin: PaddockPlugin): PaddockPlugin {
  return plugin;
}

/**
 * Something that makes `import()` of TypeScript modules work, installed by the `paddock`
 * command (bin/paddock.js) under this key of `globalThis`: a function that registers a
 * TypeScript loader once and resolves when it is in place. Absent in a program that uses
 * the library directly, which brings its own loader when it imports TypeScript.
 */
export const TYPESCRIPT_LOADER_KEY = Symbol.for('paddock.typescript-loader');

/**
 * Imports a module a user names (a `--plugin` module, a scorer module): a `file:` URL or
 * a package specifier. Before a `.ts`/`.mts`/`.cts`/`.tsx` file, it asks the loader
 * installed under `TYPESCRIPT_LOADER_KEY` (if any) to be in place, so that the command
 * registers a TypeScript loader only when one is needed. Rejects as `import()` does.
 */
export async function importModule(url: string): Promise<Record<string, unknown>> {
  const path = url.replace(/[?#].*$/, '');
  if (/\.(?:[mc]?ts|tsx)$/.test(path)) {
    const ensure = (globalThis as Record<symbol, unknown>)[TYPESCRIPT_LOADER_KEY];
    if (typeof ensure === 'function') await (ensure as () => Promise<void>)();
  }
  return (await import(url)) as Record<string, unknown>;
}
