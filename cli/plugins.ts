/**
 * The plug-ins paddock wires together — the one place that knows them all: the sections
 * plug-ins add to task files, the tool providers, and the reward functions of each task.
 */
import type { EpisodeRewards, Task, ToolProvider } from '../harness/index.ts';
import { creditTaskExtension, episodeReturns } from '../rewards/credit/index.ts';
import { BrowserToolProvider, browserTaskExtension, pageTurnReward } from '../sandboxes/browser/index.ts';
import { McpToolProvider, mcpTaskExtension } from '../sandboxes/mcp/index.ts';
import { RewardResources, buildRewardFunctions, rewardsTaskExtension } from '../rewards/index.ts';
import { toyTaskExtension, toyToolProvider } from '../sandboxes/toy/index.ts';
import { loadTasks, validateTasks, type TaskValidation } from '../tasks/index.ts';
import type { TaskSelection } from '../tasks/load.ts';
import { createAgent } from './agents.ts';

/** Task-file sections of the plug-ins, validated by their own schemas. */
export const TASK_EXTENSIONS = {
  rewards: rewardsTaskExtension,
  credit: creditTaskExtension,
  mcp_servers: mcpTaskExtension,
  browser: browserTaskExtension,
  toy: toyTaskExtension,
};

/** What the suite loaders take besides paths. */
export interface SuiteOptions {
  /** Host environment variables task files may interpolate (`--allow-env`). @default none */
  allowEnv?: readonly string[];
  /** Which tasks (`--task`, `--tag`, `--limit`; see `TaskSelection`). @default every task */
  select?: TaskSelection;
}

/** Loads tasks with every plug-in section known. Rejects with TASK_INVALID listing every problem. */
export function loadSuite(paths: readonly string[], options: SuiteOptions = {}): Promise<Task[]> {
  return loadTasks(paths, {
    extensions: TASK_EXTENSIONS,
    allowEnv: options.allowEnv ?? [],
    ...(options.select ? { select: options.select } : {}),
  });
}

/** Validates tasks with every plug-in section known, collecting every problem. */
export function validateSuite(paths: readonly string[], options: SuiteOptions = {}): Promise<TaskValidation> {
  return validateTasks(paths, {
    extensions: TASK_EXTENSIONS,
    allowEnv: options.allowEnv ?? [],
    ...(options.select ? { select: options.select } : {}),
  });
}

/** Where judge verdicts are cached across runs, so re-scoring a run makes no model calls. */
export const JUDGE_CACHE_DIR = '.paddock/cache';

/** What one run uses besides its agent and sandboxes: tool providers and reward functions. */
export class RunPlugins {
  private readonly mcp = new McpToolProvider();
  /** Launches nothing until a web episode needs the browser. */
  private readonly browser = new BrowserToolProvider();
  readonly toolProviders: ToolProvider[] = [this.mcp, this.browser, toyToolProvider];
  private readonly resources = new RewardResources({
    judgeAgentFactory: createAgent,
    cacheDir: JUDGE_CACHE_DIR,
    pageTurnReward: (task, options) => pageTurnReward(this.browser, task, options),
  });
  private readonly setups: { close(): Promise<void> }[] = [];
  /** Built once per task: the trainer asks again at every step. */
  private readonly built = new WeakMap<Task, Promise<EpisodeRewards>>();

  /** The reward functions of a task, from its `rewards` and `credit` sections. */
  readonly rewardsFor = (task: Task): Promise<EpisodeRewards> => {
    let rewards = this.built.get(task);
    if (!rewards) {
      rewards = buildRewardFunctions(task, { resources: this.resources }).then((setup) => {
        this.setups.push(setup);
        return {
          turn: setup.turn,
          trajectory: setup.trajectory,
          constraints: setup.constraints,
          group: setup.group,
          assignReturns: (episode) => episodeReturns(episode, setup.credit),
        };
      });
      this.built.set(task, rewards);
      // A failed build is not kept: the next call tries again.
      rewards.catch(() => this.built.delete(task));
    }
    return rewards;
  };

  /** Releases models, judge agents and tool providers. Idempotent. */
  async close(): Promise<void> {
    await Promise.allSettled(this.setups.map((setup) => setup.close()));
    await this.resources.close();
    await this.mcp.close();
    await this.browser.close();
  }
}
