/**
 * The rewards plug-in: the `rewards:` and `credit:` sections of task files, and the
 * reward builder that turns them into each task's reward functions for evaluation and
 * training alike. Judge models are made through the registered agent kinds, judge
 * verdicts are cached under the run context's cache folder, and `page:` turn rewards come
 * from whichever plug-in opened the `page` reward kind (the browser).
 *
 * Registering it loads nothing of the rewards: the sections' schemas are imported when
 * task files are first read, and the builder (judges, ONNX reward models) when a run opens.
 */
import { ERROR_CODES, PaddockError } from '../harness/errors.ts';
import type {
  EpisodeRewards,
  PaddockPlugin,
  PluginRunContext,
  PluginRun,
  Task,
  TurnRewardKind,
} from '../harness/index.ts';

/** Opens the reward builder of one run: each task's functions are built once and closed with the run. */
async function openRewards(context: PluginRunContext): Promise<PluginRun> {
  const [{ RewardResources, buildRewardFunctions }, { episodeReturns }] = await Promise.all([
    import('./build.ts'),
    import('./credit/index.ts'),
  ]);
  /** A turn reward kind the browser plug-in opened, or CONFIG_INVALID saying it is not registered. */
  const browserKind = (name: string, what: string, task: Task): TurnRewardKind => {
    const kind = context.turnRewardKind(name);
    if (!kind) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `task ${task.id}: ${what} needs the browser plug-in, which is not registered`,
      );
    }
    return kind;
  };
  const resources = new RewardResources({
    judgeAgentFactory: (spec) => context.createAgent(spec),
    cacheDir: context.cacheDir,
    pageTurnReward: (task, options) => browserKind('page', 'a page reward', task)(task, options),
    groundingTurnReward: (task, options) =>
      browserKind('grounding', 'a grounding reward', task)(task, options),
  });
  const setups: { close(): Promise<void> }[] = [];
  // Built once per task: the trainer asks again at every step.
  const built = new WeakMap<Task, Promise<EpisodeRewards>>();
  return {
    rewards: {
      rewardsFor: (task) => {
        let rewards = built.get(task);
        if (!rewards) {
          rewards = buildRewardFunctions(task, { resources }).then((setup) => {
            setups.push(setup);
            return {
              turn: setup.turn,
              trajectory: setup.trajectory,
              constraints: setup.constraints,
              group: setup.group,
              assignReturns: (episode) => episodeReturns(episode, setup.credit),
            };
          });
          built.set(task, rewards);
          // A failed build is not kept: the next call tries again.
          rewards.catch(() => built.delete(task));
        }
        return rewards;
      },
    },
    close: async () => {
      await Promise.allSettled(setups.map((setup) => setup.close()));
      await resources.close();
    },
  };
}

export const rewardsPlugin: PaddockPlugin = {
  name: 'rewards',
  taskSections: {
    rewards: { load: async () => (await import('./schema.ts')).rewardsTaskExtension },
    credit: { load: async () => (await import('./credit/index.ts')).creditTaskExtension },
  },
  open: openRewards,
};
