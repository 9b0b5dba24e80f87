/**
 * Held-out evaluation: the first `eval.max_tasks` held-out tasks, `eval.episodes_per_task`
 * episodes each, sampled at `eval.temperature` (run `eval-N` of the training run) and,
 * with `eval.greedy`, decoded greedily (run `eval-N-greedy`). The episodes' seeds are the
 * same at every evaluation, so evaluations differ only by the policy.
 */
import {
  isAgentOutcome,
  planEpisodes,
  runEpisodes,
  suiteOf,
  type Agent,
  type Task,
} from '../../harness/index.ts';
import { mean, passRate, type TrainingContext } from './context.ts';
import { mixSeed } from './random.ts';
import type { MetricRow } from './run-folder.ts';
import { TRAINING_RUN_IDS } from './runs.ts';

/** What an evaluation on held-out tasks found. */
export interface EvalSummary {
  step: number;
  /** Fraction of episodes whose reward reached `pass_threshold` (sampling as `eval.temperature`). */
  success: number;
  /** The same with greedy decoding, when `eval.greedy` is on. */
  successGreedy?: number;
  rewardMean: number;
  episodes: number;
  /**
   * The same per held-out suite (the task id before `@`), when the held-out tasks come
   * from more than one: e.g. the same template's held-out rows beside a reworded template.
   */
  suites?: Record<string, { success: number; successGreedy?: number; episodes: number }>;
}

/** The agents an evaluation plays. */
export interface EvalAgents {
  /** Samples at `eval.temperature`. */
  sampled: Agent;
  /** Decodes greedily (`eval.greedy`). */
  greedy?: Agent;
}

/**
 * Evaluates the current policy on `heldout` as step `step`'s evaluation, writes its
 * metrics row and returns its summary. An episode that ended in an error scores 0.
 */
export async function evaluate(
  context: TrainingContext,
  heldout: readonly Task[],
  step: number,
  agents: EvalAgents,
): Promise<EvalSummary> {
  const { cfg, folder } = context;
  const started = performance.now();
  const tasks = heldout.slice(0, cfg.eval.max_tasks ?? heldout.length);
  const plan = planEpisodes(tasks, { epochs: cfg.eval.episodes_per_task, seed: mixSeed(cfg.seed, 0xe7a1) });
  const play = async (agent: Agent, greedy: boolean): Promise<{ suite: string; reward: number }[]> => {
    const runId = TRAINING_RUN_IDS.evaluation(step, greedy);
    const episodes = await folder.runs.record(
      { runId, plan, config: { agent: agent.name, purpose: 'evaluation', step, training: folder.dir } },
      (store) =>
        runEpisodes({
          runId,
          tasks,
          plan,
          agent,
          ...context.episodes,
          maxAttempts: 2,
          retryDelayMs: 100,
          store,
        }),
    );
    return episodes.map((episode) => ({
      suite: suiteOf(episode.taskId),
      reward: isAgentOutcome(episode) ? episode.reward.total : 0,
    }));
  };
  const sampled = await play(agents.sampled, false);
  const greedy = agents.greedy ? await play(agents.greedy, true) : undefined;
  const rewards = sampled.map((episode) => episode.reward);
  const names = [...new Set(sampled.map((episode) => episode.suite))].sort();
  const suites =
    names.length < 2
      ? undefined
      : Object.fromEntries(
          names.map((name) => {
            const of = (episodes: typeof sampled) =>
              episodes.filter((episode) => episode.suite === name).map((episode) => episode.reward);
            const suiteRewards = of(sampled);
            return [
              name,
              {
                success: passRate(suiteRewards, cfg.pass_threshold),
                ...(greedy ? { successGreedy: passRate(of(greedy), cfg.pass_threshold) } : {}),
                episodes: suiteRewards.length,
              },
            ];
          }),
        );
  const summary: EvalSummary = {
    step,
    success: passRate(rewards, cfg.pass_threshold),
    rewardMean: mean(rewards),
    episodes: rewards.length,
    ...(greedy
      ? {
          successGreedy: passRate(
            greedy.map((episode) => episode.reward),
            cfg.pass_threshold,
          ),
        }
      : {}),
    ...(suites ? { suites } : {}),
  };
  folder.writeRow({
    type: 'eval',
    step,
    success: summary.success,
    reward_mean: summary.rewardMean,
    episodes: summary.episodes,
    ...(greedy ? { success_greedy: summary.successGreedy } : {}),
    ...(suites ? { suites } : {}),
    eval_ms: performance.now() - started,
  });
  const perSuite = suites
    ? ` — ${Object.entries(suites)
        .map(
          ([name, figures]) =>
            `${name} ${figures.success.toFixed(3)}` +
            (figures.successGreedy === undefined ? '' : ` (greedy ${figures.successGreedy.toFixed(3)})`),
        )
        .join(', ')}`
    : '';
  context.log(
    `eval at step ${step}: held-out success ${summary.success.toFixed(3)}` +
      (greedy ? ` (greedy ${summary.successGreedy!.toFixed(3)})` : '') +
      ` over ${summary.episodes} episodes${perSuite}`,
  );
  return summary;
}

/** The summary an `eval` row of metrics.jsonl records. */
export function evalSummaryOf(row: MetricRow): EvalSummary {
  return {
    step: row.step,
    success: Number(row.success),
    rewardMean: Number(row.reward_mean),
    episodes: Number(row.episodes),
    ...(typeof row.success_greedy === 'number' ? { successGreedy: row.success_greedy } : {}),
    ...(row.suites && typeof row.suites === 'object' ? { suites: row.suites as EvalSummary['suites'] } : {}),
  };
}
