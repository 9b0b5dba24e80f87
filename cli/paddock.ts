/**
 * The composition root: `createPaddock({ plugins })` puts plug-ins together — the built-in
 * ones and any others — and gives the operations of the library over them: load and
 * validate suites with every task-file section known, make agents from specs, open a
 * run's tool providers and rewards, evaluate, resume, train and serve. The CLI is a thin
 * layer over it, and no other place wires plug-ins.
 *
 * ```ts
 * import { createPaddock } from 'paddock';
 * import { myCloudSandbox } from './my-plugin.js';
 *
 * const paddock = createPaddock({ plugins: [myCloudSandbox] });
 * await paddock.evaluate({ taskPaths: ['tasks/examples'], agent: 'oracle', sandbox: 'my-cloud' });
 * ```
 */
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
// Only the light parts of the harness at the top: this module is on the path of
// `paddock --help`, which must not load zod, the task loaders (yaml, smol-toml) or any
// plug-in's implementation. Those are imported when first used.
import { ERROR_CODES, PaddockError, describeError } from '../harness/errors.ts';
import { importModule, isLazyTaskSection, type TaskSection } from '../harness/plugin.ts';
import type {
  Agent,
  AgentKind,
  EpisodeRewards,
  PaddockPlugin,
  PluginRun,
  SandboxKind,
  Task,
  ToolProvider,
  TurnRewardKind,
} from '../harness/index.ts';
import type { TaskSelection, TaskValidation } from '../tasks/index.ts';
import { agentsPlugin } from '../agents/plugin.ts';
import { onnxPlugin } from '../agents/onnx/plugin.ts';
import { rewardsPlugin } from '../rewards/plugin.ts';
import { browserPlugin } from '../sandboxes/browser/plugin.ts';
import { dockerPlugin } from '../sandboxes/docker/plugin.ts';
import { mcpPlugin } from '../sandboxes/mcp/plugin.ts';
import { toyPlugin } from '../sandboxes/toy/plugin.ts';

/** The plug-ins paddock ships, in the order they are registered. */
export const BUILTIN_PLUGINS: readonly PaddockPlugin[] = [
  dockerPlugin,
  agentsPlugin,
  onnxPlugin,
  rewardsPlugin,
  mcpPlugin,
  browserPlugin,
  toyPlugin,
];

/** The sandbox kind runs use unless told otherwise. */
export const DEFAULT_SANDBOX_KIND = 'docker';

/** Where judge verdicts are cached across runs, so re-scoring a run makes no model calls. */
export const JUDGE_CACHE_DIR = '.paddock/cache';

export interface PaddockOptions {
  /** Plug-ins registered after the built-in ones. @default none */
  plugins?: readonly PaddockPlugin[];
  /** Whether the built-in plug-ins are registered. @default true */
  builtins?: boolean;
  /** Where caches that outlive a run go. @default `.paddock/cache` */
  cacheDir?: string;
  /** Environment agent kinds read base URLs and keys from. @default process.env */
  env?: NodeJS.ProcessEnv;
}

/** What the suite loaders take besides paths. */
export interface SuiteOptions {
  /** Host environment variables task files may interpolate (`--allow-env`). @default none */
  allowEnv?: readonly string[];
  /** Which tasks (`--task`, `--tag`, `--limit`; see `TaskSelection`). @default every task */
  select?: TaskSelection;
}

/** What the plug-ins opened for one run: tool providers and each task's rewards. */
export interface OpenedRun {
  readonly toolProviders: readonly ToolProvider[];
  /** The reward functions of a task, from every reward builder opened (built once per task). */
  readonly rewardsFor: (task: Task) => Promise<EpisodeRewards>;
  /** Closes what every plug-in opened. Idempotent. */
  close(): Promise<void>;
}

/** Registers `entries` of one plug-in into `into`, refusing a name another plug-in took. */
function register<T>(
  into: Map<string, { plugin: string; value: T }>,
  entries: Readonly<Record<string, T>> | undefined,
  plugin: string,
  what: string,
): void {
  for (const [name, value] of Object.entries(entries ?? {})) {
    const taken = into.get(name);
    if (taken) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `plug-in ${plugin} registers the ${what} "${name}", which plug-in ${taken.plugin} already registered`,
      );
    }
    into.set(name, { plugin, value });
  }
}

/** Plug-ins put together; see the module comment. */
export class Paddock {
  readonly plugins: readonly PaddockPlugin[];
  readonly cacheDir: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly sandboxes = new Map<string, { plugin: string; value: SandboxKind }>();
  private readonly agents = new Map<string, { plugin: string; value: AgentKind }>();
  private readonly sections = new Map<string, { plugin: string; value: TaskSection }>();
  private schemas: Promise<Record<string, z.ZodType>> | undefined;

  constructor(options: PaddockOptions = {}) {
    this.plugins = [...(options.builtins === false ? [] : BUILTIN_PLUGINS), ...(options.plugins ?? [])];
    this.cacheDir = options.cacheDir ?? JUDGE_CACHE_DIR;
    this.env = options.env ?? process.env;
    for (const plugin of this.plugins) {
      if (typeof plugin?.name !== 'string' || plugin.name === '') {
        throw new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          `a plug-in has no name (expected { name: string, … })`,
        );
      }
      register(this.sandboxes, plugin.sandboxes, plugin.name, 'sandbox kind');
      register(this.agents, plugin.agents, plugin.name, 'agent kind');
      register(this.sections, plugin.taskSections, plugin.name, 'task-file section');
    }
  }

  /** The task-file sections of every plug-in, by key, as the plug-ins gave them (some lazily). */
  get taskSections(): Record<string, TaskSection> {
    return Object.fromEntries([...this.sections].map(([key, { value }]) => [key, value]));
  }

  /**
   * The schema of every plug-in's task-file section, by key, lazy ones loaded (once).
   * Rejects with CONFIG_INVALID naming the plug-in and section whose schema failed to load.
   */
  taskSectionSchemas(): Promise<Record<string, z.ZodType>> {
    this.schemas ??= Promise.all(
      [...this.sections].map(async ([key, { plugin, value }]): Promise<[string, z.ZodType]> => {
        if (!isLazyTaskSection(value)) return [key, value];
        try {
          return [key, await value.load()];
        } catch (error) {
          throw new PaddockError(
            ERROR_CODES.CONFIG_INVALID,
            `plug-in ${plugin}: the schema of the task-file section "${key}" failed to load: ${describeError(error)}`,
            { cause: error },
          );
        }
      }),
    ).then(Object.fromEntries);
    // A failed load is not kept: the next call tries again.
    this.schemas.catch(() => (this.schemas = undefined));
    return this.schemas;
  }

  /** How each agent kind's spec is written, for help texts. */
  get agentSpecs(): string[] {
    return [...this.agents.values()].map(({ value }) => value.usage);
  }

  /** The sandbox kinds, by name, with their one-line descriptions. */
  get sandboxKinds(): { name: string; description: string; plugin: string }[] {
    return [...this.sandboxes].map(([name, { plugin, value }]) => ({
      name,
      description: value.description,
      plugin,
    }));
  }

  /** The sandbox kind `name`; rejects with CONFIG_INVALID listing the kinds there are. */
  sandboxKind(name: string): SandboxKind {
    const kind = this.sandboxes.get(name)?.value;
    if (!kind) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `unknown sandbox kind "${name}"; expected one of: ${[...this.sandboxes.keys()].join(', ') || '(none registered)'}` +
          ' (a kind from a plug-in module needs --plugin <module>)',
      );
    }
    return kind;
  }

  /** Creates the agent a spec names. Rejects with CONFIG_INVALID for an unknown or malformed spec. */
  async createAgent(spec: string): Promise<Agent> {
    const colon = spec.indexOf(':');
    const kindName = colon < 0 ? spec : spec.slice(0, colon);
    const argument = colon < 0 ? '' : spec.slice(colon + 1);
    const kind = this.agents.get(kindName)?.value;
    if (!kind || (kind.needsArgument === true && argument === '')) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `unknown agent "${spec}"; expected one of: ${this.agentSpecs.join(', ')}`,
      );
    }
    return kind.create(argument, { spec, env: this.env });
  }

  /** Loads tasks with every plug-in section known. Rejects with TASK_INVALID listing every problem. */
  async loadSuite(paths: readonly string[], options: SuiteOptions = {}): Promise<Task[]> {
    const [{ loadTasks }, extensions] = await Promise.all([
      import('../tasks/index.ts'),
      this.taskSectionSchemas(),
    ]);
    return loadTasks(paths, {
      extensions,
      allowEnv: options.allowEnv ?? [],
      ...(options.select ? { select: options.select } : {}),
    });
  }

  /** Validates tasks with every plug-in section known, collecting every problem. */
  async validateSuite(paths: readonly string[], options: SuiteOptions = {}): Promise<TaskValidation> {
    const [{ validateTasks }, extensions] = await Promise.all([
      import('../tasks/index.ts'),
      this.taskSectionSchemas(),
    ]);
    return validateTasks(paths, {
      extensions,
      allowEnv: options.allowEnv ?? [],
      ...(options.select ? { select: options.select } : {}),
    });
  }

  /**
   * Opens every plug-in for one run: their tool providers, reward kinds and reward
   * builders. On failure, closes what was opened.
   */
  async openRun(): Promise<OpenedRun> {
    const opened: PluginRun[] = [];
    const kinds = new Map<string, TurnRewardKind>();
    const close = async (): Promise<void> => {
      const all = opened.splice(0);
      await Promise.allSettled(all.reverse().map(async (run) => run.close?.()));
    };
    try {
      for (const plugin of this.plugins) {
        if (!plugin.open) continue;
        const run = await plugin.open({
          createAgent: (spec) => this.createAgent(spec),
          turnRewardKind: (name) => kinds.get(name),
          cacheDir: this.cacheDir,
        });
        opened.push(run);
        for (const [name, kind] of Object.entries(run.turnRewardKinds ?? {})) kinds.set(name, kind);
      }
    } catch (error) {
      await close();
      throw error;
    }
    const builders = opened.flatMap((run) => (run.rewards ? [run.rewards] : []));
    return {
      toolProviders: opened.flatMap((run) => run.toolProviders ?? []),
      rewardsFor: async (task) => mergeRewards(await Promise.all(builders.map((b) => b.rewardsFor(task)))),
      close,
    };
  }
}

/** The rewards of several builders as one: their functions side by side, the first credit assignment. */
function mergeRewards(parts: readonly EpisodeRewards[]): EpisodeRewards {
  if (parts.length === 1) return parts[0]!;
  const assignReturns = parts.find((part) => part.assignReturns)?.assignReturns;
  return {
    turn: parts.flatMap((part) => part.turn ?? []),
    trajectory: parts.flatMap((part) => part.trajectory ?? []),
    constraints: parts.flatMap((part) => part.constraints ?? []),
    group: parts.flatMap((part) => part.group ?? []),
    ...(assignReturns ? { assignReturns } : {}),
  };
}

/** Puts plug-ins together (the built-in ones, then `options.plugins`). */
export function createPaddock(options: PaddockOptions = {}): Paddock {
  return new Paddock(options);
}

/**
 * Loads plug-in modules (`--plugin`): a path (relative to `cwd`) or a package name
 * resolved from `cwd`. A module's default export (or its `plugins` / `plugin` export) is
 * a plug-in or a list of them. Rejects with CONFIG_INVALID naming the module and what is
 * wrong.
 */
export async function loadPluginModules(
  specifiers: readonly string[],
  cwd = process.cwd(),
): Promise<PaddockPlugin[]> {
  const plugins: PaddockPlugin[] = [];
  for (const specifier of specifiers) {
    let url: string;
    try {
      const local = specifier.startsWith('.') || isAbsolute(specifier);
      url = local
        ? pathToFileURL(resolve(cwd, specifier)).href
        : pathToFileURL(createRequire(join(cwd, 'noop.js')).resolve(specifier)).href;
    } catch (error) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `--plugin ${specifier}: cannot find the module: ${describeError(error)}`,
        { cause: error },
      );
    }
    let module: Record<string, unknown>;
    try {
      module = await importModule(url);
    } catch (error) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `--plugin ${specifier}: the module failed to load: ${describeError(error)}`,
        { cause: error },
      );
    }
    const exported = module.default ?? module.plugins ?? module.plugin;
    const list = Array.isArray(exported) ? exported : [exported];
    if (
      exported === undefined ||
      list.some((plugin) => typeof (plugin as PaddockPlugin)?.name !== 'string')
    ) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `--plugin ${specifier}: expected a default export that is a plug-in ({ name, sandboxes?, agents?, taskSections?, open? }) or a list of them`,
      );
    }
    plugins.push(...(list as PaddockPlugin[]));
  }
  return plugins;
}

/** How a run refers to a plug-in module so that `resume` finds it again from any folder. */
export function pluginModuleReference(specifier: string, cwd = process.cwd()): string {
  return specifier.startsWith('.') || isAbsolute(specifier) ? resolve(cwd, specifier) : specifier;
}
