/**
 * From a task's `rewards:` and `credit:` sections to reward functions the episode loop
 * and the trainer call. Paths are resolved against the task folder; models, judge agents
 * and the judge cache are shared through `RewardResources` across the tasks of a run.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ERROR_CODES,
  PaddockError,
  describeError,
  formatZodIssues,
  type Agent,
  type GroupRewardFunction,
  type Task,
  type TrajectoryRewardFunction,
  type TurnRewardFunction,
} from '../harness/index.ts';
import { checkTaskPath, type TaskPathKind } from '../harness/task.ts';
import { creditConfig, creditTaskExtension, type CreditConfig } from './credit/index.ts';
import { answerReward, extractNumber } from './answer.ts';
import { JUDGE_CACHE_FILE, JudgeCache } from './cache.ts';
import { constraintFunction, type ConstraintFunction } from './constraints.ts';
import { LlmJudge, judgeGroupReward, judgeTrajectoryReward, judgeTurnReward } from './judge.ts';
import {
  OnnxRewardModel,
  onnxTrajectoryReward,
  onnxTurnReward,
  type OnnxRewardModelOptions,
} from './onnx-model.ts';
import { ProgressReward, type ProgressParser } from './progress.ts';
import { ruleReward } from './rules.ts';
import {
  entryWeight,
  rewardsTaskExtension,
  trajectoryEntryName,
  turnEntryName,
  type RewardsSection,
  type TrajectoryRewardEntry,
  type TurnRewardEntry,
} from './schema.ts';

/** Makes the judge model of a `judge.agent` spec (e.g. `openai:gpt-4.1-mini`). */
export type JudgeAgentFactory = (spec: string) => Agent | Promise<Agent>;

/**
 * Makes the turn reward of a `page:` entry: the task's page scorer after each turn. The
 * browser plug-in provides it (the reward layer does not know the browser); it throws a
 * PaddockError when `task` has no page to score.
 */
export type PageTurnRewardFactory = (
  task: Task,
  options: { name: string; weight: number; mode: 'delta' | 'value' },
) => TurnRewardFunction;

/**
 * Makes the turn reward of a `grounding:` entry: where each coordinate action of the turn
 * pointed, against the task's grounding target. The browser plug-in provides it; it
 * throws a PaddockError when `task` has no grounding target.
 */
export type GroundingTurnRewardFactory = (
  task: Task,
  options: { name: string; weight: number; kind: 'hit' | 'gaussian_point' },
) => TurnRewardFunction;

export interface RewardResourcesOptions {
  /** Makes judge agents; required when a task declares a judge. */
  judgeAgentFactory?: JudgeAgentFactory;
  /** Folder of the judge cache file (`judge-cache.jsonl`); judgements are cached in memory only without it. */
  cacheDir?: string;
  /** Options of the ONNX sessions. */
  onnx?: OnnxRewardModelOptions;
  /** Makes `page:` turn rewards; required when a task declares one. */
  pageTurnReward?: PageTurnRewardFactory;
  /** Makes `grounding:` turn rewards; required when a task declares one. */
  groundingTurnReward?: GroundingTurnRewardFactory;
}

/**
 * What reward functions share across the tasks of a run: ONNX models (one session per
 * file), judge agents (one per spec) and the judge cache. `close()` releases them all.
 */
export class RewardResources {
  private readonly models = new Map<string, Promise<OnnxRewardModel>>();
  private readonly agents = new Map<string, Promise<Agent>>();
  private cache: Promise<JudgeCache> | undefined;
  private closed = false;

  constructor(readonly options: RewardResourcesOptions = {}) {}

  /** The model at `location` (absolute), loaded once. */
  model(location: string): Promise<OnnxRewardModel> {
    this.checkOpen();
    let model = this.models.get(location);
    if (!model) {
      model = OnnxRewardModel.load(location, this.options.onnx ?? {});
      this.models.set(location, model);
      // A failed load is not kept: the next build tries again.
      model.catch(() => this.models.delete(location));
    }
    return model;
  }

  /** The judge agent of `spec`, made once. Rejects with CONFIG_INVALID without a factory. */
  judgeAgent(spec: string, where: string): Promise<Agent> {
    this.checkOpen();
    const factory = this.options.judgeAgentFactory;
    if (!factory) {
      return Promise.reject(
        new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          `${where} declares the judge "${spec}", but no judge agent factory was given to make it`,
        ),
      );
    }
    let agent = this.agents.get(spec);
    if (!agent) {
      agent = Promise.resolve().then(() => factory(spec));
      this.agents.set(spec, agent);
      agent.catch(() => this.agents.delete(spec));
    }
    return agent.catch((error: unknown) => {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${where}: cannot make the judge "${spec}": ${describeError(error)}`,
        { cause: error },
      );
    });
  }

  /** The judge cache (a file in `cacheDir`, or memory). */
  judgeCache(): Promise<JudgeCache> {
    this.checkOpen();
    const dir = this.options.cacheDir;
    this.cache ??=
      dir === undefined
        ? Promise.resolve(JudgeCache.memory())
        : JudgeCache.open(path.join(dir, JUDGE_CACHE_FILE));
    return this.cache;
  }

  private checkOpen(): void {
    if (this.closed) throw new PaddockError(ERROR_CODES.CONFIG_INVALID, 'the reward resources are closed');
  }

  /** Closes the models and judge agents. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const models = await Promise.allSettled(this.models.values());
    const agents = await Promise.allSettled(this.agents.values());
    await Promise.allSettled([
      ...models.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value.close()] : [])),
      ...agents.flatMap((outcome) =>
        outcome.status === 'fulfilled' && outcome.value.close ? [outcome.value.close()] : [],
      ),
    ]);
  }
}

export interface BuildRewardOptions extends RewardResourcesOptions {
  /** Shared resources; without them the setup owns private ones that its `close()` releases. */
  resources?: RewardResources;
}

/** A task's reward functions, ready for the episode loop and the trainer. */
export interface RewardSetup {
  /**
   * Scored after each turn: the episode loop opens each for the episode (a progress reward
   * measures Φ(start) then) and closes them when it ends.
   */
  turn: TurnRewardFunction[];
  /**
   * Scored after the episode. Holds a `verifier` function when the section lists the
   * verifier: it re-reads `episode.verifier.reward` under the configured weight, replacing
   * the loop's own `verifier` component (same name).
   */
  trajectory: TrajectoryRewardFunction[];
  /** Scored over a finished group of episodes (group judges), by the trainer. */
  group: GroupRewardFunction[];
  /** Measured on each finished episode into `reward.constraints`. */
  constraints: ConstraintFunction[];
  /** Credit assignment of the task. */
  credit: CreditConfig;
  /** The verifier's weight (1 unless the section says otherwise). */
  verifierWeight: number;
  /** Releases what this setup owns (nothing when `resources` were given). Idempotent. */
  close(): Promise<void>;
}

/** `{{field}}` of a dataset row (the loader keeps the row in `task.metadata.row`). */
function fillTemplate(text: string, task: Task, where: string): string {
  const row = task.metadata.row;
  return text.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_whole, field: string) => {
    const value =
      row !== null && typeof row === 'object' ? (row as Record<string, unknown>)[field] : undefined;
    if (value === undefined) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${where}: {{${field}}} names no field of the task's dataset row`,
      );
    }
    return typeof value === 'string' ? value : JSON.stringify(value);
  });
}

/** The parsed `rewards:` section of `task` (validated again: tasks may be built in code). */
export function rewardsSection(task: Task): RewardsSection | undefined {
  const raw = task.extensions.rewards;
  if (raw === undefined) return undefined;
  const parsed = rewardsTaskExtension.safeParse(raw);
  if (!parsed.success) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `task ${task.id}: invalid rewards section:\n${formatZodIssues(parsed.error.issues.map((issue) => ({ ...issue, path: ['rewards', ...issue.path] })))}`,
    );
  }
  return parsed.data;
}

function creditSection(task: Task) {
  const raw = task.extensions.credit;
  if (raw === undefined) return undefined;
  const parsed = creditTaskExtension.safeParse(raw);
  if (!parsed.success) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `task ${task.id}: invalid credit section:\n${formatZodIssues(parsed.error.issues.map((issue) => ({ ...issue, path: ['credit', ...issue.path] })))}`,
    );
  }
  return parsed.data;
}

/**
 * A file a `rewards:` entry names, checked as the task loader checks it (tasks may be built
 * in code): inside the task folder after symbolic links, no link leading out. A missing
 * file is left to its reader to report.
 * @throws PaddockError CONFIG_INVALID naming the field.
 */
async function taskFile(task: Task, relative: string, want: TaskPathKind, where: string): Promise<string> {
  const checked = await checkTaskPath(task.dir, relative, want);
  // A missing file is reported by its reader, in its own words.
  if (!checked.ok && checked.missing) return path.resolve(task.dir, relative);
  if (!checked.ok) {
    throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${where}: ${checked.message}`, {
      details: { file: path.resolve(task.dir, relative) },
    });
  }
  return checked.path;
}

async function readRubric(task: Task, relative: string, where: string): Promise<string> {
  const file = await taskFile(task, relative, 'file', `${where}.judge.rubric`);
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `${where}: cannot read the rubric ${file}: ${describeError(error)}`,
      {
        cause: error,
        details: { file },
      },
    );
  }
}

/**
 * Builds the reward functions of `task` from `task.extensions.rewards` and `.credit`.
 * A task without a `rewards:` section gets none (the loop still records the verifier).
 * Rejects with CONFIG_INVALID when a section is invalid, a rubric or model cannot be
 * loaded, a judge is declared without `judgeAgentFactory`, a page reward without
 * `pageTurnReward` or for a task without a page scorer, a progress reward for a task
 * without a sandbox, or the verifier is listed for a task without one.
 */
export async function buildRewardFunctions(
  task: Task,
  options: BuildRewardOptions = {},
): Promise<RewardSetup> {
  const owned = options.resources ? undefined : new RewardResources(options);
  const resources = options.resources ?? owned!;
  try {
    const section = rewardsSection(task) ?? {};
    const turn: TurnRewardFunction[] = [];
    const trajectory: TrajectoryRewardFunction[] = [];
    const group: GroupRewardFunction[] = [];
    const progressNames: string[] = [];
    let verifierWeight = 1;

    const makeJudge = async (
      spec: {
        agent: string;
        rubric: string;
        retries?: number | undefined;
        scale?: [number, number] | undefined;
      },
      where: string,
    ) =>
      new LlmJudge({
        agent: await resources.judgeAgent(spec.agent, where),
        rubric: await readRubric(task, spec.rubric, where),
        cache: await resources.judgeCache(),
        ...(spec.retries === undefined ? {} : { retries: spec.retries }),
        ...(spec.scale === undefined ? {} : { scale: spec.scale }),
      });

    for (const [index, entry] of (section.turn ?? []).entries()) {
      const where = `task ${task.id}: rewards.turn.${index}`;
      turn.push(await buildTurnReward(task, entry, where, resources, makeJudge));
      const potential =
        entry.progress !== undefined ||
        entry.model?.mode === 'progress' ||
        (entry.page !== undefined && (entry.page.mode ?? 'delta') === 'delta');
      if (potential) progressNames.push(turnEntryName(entry)!);
    }
    for (const [index, entry] of (section.trajectory ?? []).entries()) {
      const where = `task ${task.id}: rewards.trajectory.${index}`;
      const name = trajectoryEntryName(entry)!;
      const weight = entryWeight(entry, entry.verifier ?? entry.answer ?? entry.model ?? entry.judge);
      if (entry.verifier) {
        if (!task.verifier)
          throw new PaddockError(
            ERROR_CODES.CONFIG_INVALID,
            `${where}: lists the verifier, but the task has none`,
          );
        verifierWeight = weight;
        trajectory.push(verifierReward(weight));
      } else if (entry.answer) {
        trajectory.push(buildAnswerReward(task, entry.answer, name, weight, where));
      } else if (entry.model) {
        const model = await resources.model(
          await taskFile(task, entry.model.onnx, 'any', `${where}.model.onnx`),
        );
        trajectory.push(
          onnxTrajectoryReward(model, {
            name,
            weight,
            ...(entry.model.input ? { input: entry.model.input } : {}),
          }),
        );
      } else if (entry.judge) {
        const judge = await makeJudge(entry.judge, where);
        if (entry.judge.group) group.push(judgeGroupReward(judge, { name, weight }));
        else trajectory.push(judgeTrajectoryReward(judge, { name, weight }));
      }
    }
    const constraints = (section.constraints ?? []).map((entry) =>
      constraintFunction(entry.cost, {
        ...(entry.name === undefined ? {} : { name: entry.name }),
        ...(entry.limit === undefined ? {} : { limit: entry.limit }),
      }),
    );
    return {
      turn,
      trajectory,
      group,
      constraints,
      credit: creditConfig(creditSection(task), progressNames),
      verifierWeight,
      close: async () => {
        await owned?.close();
      },
    };
  } catch (error) {
    await owned?.close();
    throw error;
  }
}

async function buildTurnReward(
  task: Task,
  entry: TurnRewardEntry,
  where: string,
  resources: RewardResources,
  makeJudge: (spec: NonNullable<TurnRewardEntry['judge']>, where: string) => Promise<LlmJudge>,
): Promise<TurnRewardFunction> {
  const name = turnEntryName(entry)!;
  if (entry.rule) {
    return ruleReward(entry.rule, {
      name,
      weight: entryWeight(entry, undefined),
      ...(entry.require ? { require: entry.require } : {}),
      ...(entry.pattern !== undefined ? { pattern: entry.pattern } : {}),
      ...(entry.window !== undefined ? { window: entry.window } : {}),
      ...(entry.count ? { count: entry.count } : {}),
      ...(entry.per !== undefined ? { per: entry.per } : {}),
    });
  }
  if (entry.progress) {
    if (!task.environment) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${where}: a progress command runs in the sandbox, but the task has no environment`,
      );
    }
    const spec = entry.progress;
    return new ProgressReward({
      name,
      weight: entryWeight(entry, spec),
      command: spec.command,
      parse: spec.parse as ProgressParser,
      ...(spec.timeout_sec === undefined ? {} : { timeoutMs: Math.round(spec.timeout_sec * 1000) }),
      ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
      ...(spec.user === undefined ? {} : { user: spec.user }),
      ...(spec.initial === undefined ? {} : { initial: spec.initial }),
    });
  }
  if (entry.model) {
    const model = await resources.model(await taskFile(task, entry.model.onnx, 'any', `${where}.model.onnx`));
    return onnxTurnReward(model, {
      name,
      weight: entryWeight(entry, entry.model),
      ...(entry.model.input ? { input: entry.model.input } : {}),
      ...(entry.model.mode ? { mode: entry.model.mode } : {}),
    });
  }
  if (entry.page) {
    const factory = resources.options.pageTurnReward;
    if (!factory) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${where}.page: a page reward runs the browser's page scorer, but no browser plug-in was given to make it (pageTurnReward)`,
      );
    }
    const options = { name, weight: entryWeight(entry, entry.page), mode: entry.page.mode ?? 'delta' };
    try {
      return factory(task, options);
    } catch (error) {
      throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${where}.page: ${describeError(error)}`, {
        cause: error,
      });
    }
  }
  if (entry.grounding) {
    const factory = resources.options.groundingTurnReward;
    if (!factory) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${where}.grounding: a grounding reward scores the agent's coordinate actions on the page, but no browser plug-in was given to make it (groundingTurnReward)`,
      );
    }
    const options = {
      name,
      weight: entryWeight(entry, entry.grounding),
      kind: entry.grounding.kind ?? ('gaussian_point' as const),
    };
    try {
      return factory(task, options);
    } catch (error) {
      throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${where}.grounding: ${describeError(error)}`, {
        cause: error,
      });
    }
  }
  const judge = await makeJudge(entry.judge!, where);
  return judgeTurnReward(judge, { name, weight: entryWeight(entry, entry.judge) });
}

function buildAnswerReward(
  task: Task,
  spec: NonNullable<TrajectoryRewardEntry['answer']>,
  name: string,
  weight: number,
  where: string,
): TrajectoryRewardFunction {
  const expected = [spec.expected]
    .flat()
    .map((value) => fillTemplate(String(value), task, `${where}.answer.expected`));
  if (spec.match === 'numeric') {
    const bad = expected.find((value) => extractNumber(value) === undefined);
    if (bad !== undefined) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${where}.answer.expected: "${bad}" holds no number to match numerically`,
      );
    }
  }
  if (spec.match === 'regex') {
    for (const pattern of expected) {
      try {
        new RegExp(pattern, spec.flags ?? '');
      } catch (error) {
        throw new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          `${where}.answer.expected: not a valid regular expression: ${describeError(error)}`,
          {
            cause: error,
          },
        );
      }
    }
  }
  return answerReward({
    name,
    weight,
    expected,
    ...(spec.match ? { match: spec.match } : {}),
    ...(spec.tolerance === undefined ? {} : { tolerance: spec.tolerance }),
    ...(spec.relative_tolerance === undefined ? {} : { relativeTolerance: spec.relative_tolerance }),
    ...(spec.flags === undefined ? {} : { flags: spec.flags }),
  });
}

/**
 * The verifier's reward under `weight`, named `verifier`: the loop records its own
 * `verifier` component with weight 1 first, and this one replaces it.
 */
export function verifierReward(weight = 1): TrajectoryRewardFunction {
  return {
    name: 'verifier',
    weight,
    score: async ({ episode }) => episode.verifier?.reward ?? 0,
  };
}
