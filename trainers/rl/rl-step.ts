/**
 * One RL step, in two parts that asynchronous training overlaps: `playStep` samples
 * `tasks.per_step` train tasks, runs `group_size` episodes of each with the rollout agent
 * (recorded as run `step-N` of the training run) and scores the finished groups with the
 * tasks' group rewards; `trainOnRollouts` computes advantages, builds token sequences from
 * the recorded ids, updates the policy through the worker, and the caller's `publish`
 * makes it the policy of the next rollouts.
 *
 * The tasks and episode seeds are functions of `seed` and the step only.
 */
import {
  applyGroupRewards,
  episodeSeed,
  isAgentOutcome,
  runEpisodes,
  type Agent,
  type EpisodeRecord,
  type PlannedEpisode,
  type RunEpisodesOptions,
  type Task,
} from '../../harness/index.ts';
import { computeAdvantages, groupsWithSignal } from './advantages.ts';
import { episodeSequences, type TokenSequence } from './batch.ts';
import type { TrainConfig } from './config.ts';
import { mean, passRate, type TrainingContext } from './context.ts';
import { createRng, mixSeed, sample } from './random.ts';
import type { MetricRow } from './run-folder.ts';
import { TRAINING_RUN_IDS } from './runs.ts';
import type { LossConfig, OptimizerConfig, StepMetrics, TorchTrainer } from './torch-trainer.ts';

/** What a step needs besides the run's context. */
export interface RlStepDeps {
  trainer: TorchTrainer;
  /** The policy's longest context (longer sequences are dropped, and counted). */
  maxLen: number;
  /** Exports the updated policy as `step`'s and makes the agents sample from it; returns ms spent. */
  publish: (step: number) => Promise<number>;
  /** The off-policy correction of the loss (`rolloutCorrection`). */
  correction: Pick<LossConfig, 'rollout_correction' | 'is_cap'>;
  /** When the trainer began waiting for this step's rollouts (performance.now()). */
  waitStartedAt?: number;
}

/**
 * The loss's correction for rollouts the trainer's policy did not sample itself:
 * `algorithm.rollout_correction`, where `auto` is truncated importance sampling when
 * rollouts may be off-policy (asynchronous steps, or an inference server whose numerics
 * differ from the trainer's) and none for synchronous in-process rollouts.
 */
export function rolloutCorrection(cfg: TrainConfig): RlStepDeps['correction'] {
  const choice = cfg.algorithm.rollout_correction;
  const offPolicy = cfg.rollout.max_off_policy_steps > 0 || cfg.rollout.engine !== 'onnx';
  const kind = choice === 'auto' ? (offPolicy ? 'tis' : 'none') : choice;
  return kind === 'none'
    ? { rollout_correction: 'none' }
    : { rollout_correction: kind, is_cap: cfg.algorithm.is_cap };
}

/** The optimiser of the RL phase (its schedule spans every optimiser step of the run). */
export function rlOptimizer(cfg: TrainConfig): OptimizerConfig {
  const algorithm = cfg.algorithm;
  return {
    lr: algorithm.lr,
    total_steps: Math.max(1, cfg.steps * algorithm.epochs * algorithm.mini_batches),
    warmup_steps: algorithm.warmup_steps,
    schedule: algorithm.schedule,
    min_lr_ratio: algorithm.min_lr_ratio,
    weight_decay: algorithm.weight_decay,
    grad_clip: algorithm.grad_clip,
  };
}

/** The worker's loss settings from the config (`maxLen`: the policy's context, Dr. GRPO's default divisor). */
export function lossConfig(cfg: TrainConfig, maxLen: number): LossConfig {
  const algorithm = cfg.algorithm;
  const dualClip = algorithm.dual_clip === true ? 3 : algorithm.dual_clip === false ? 0 : algorithm.dual_clip;
  return {
    clip_low: algorithm.clip,
    clip_high: algorithm.clip_high ?? algorithm.clip,
    ...(dualClip > 0 ? { dual_clip: dualClip } : {}),
    log_ratio_clamp: algorithm.log_ratio_clamp,
    kl_coef: algorithm.kl,
    kl_estimator: algorithm.kl_estimator,
    kl_metric: algorithm.kl_metric,
    entropy_coef: algorithm.entropy,
    temperature: cfg.sampling.temperature,
    agg: algorithm.loss_agg,
    ...(algorithm.loss_agg === 'seq-mean-token-sum-norm'
      ? { norm_tokens: algorithm.loss_norm ?? maxLen }
      : {}),
  };
}

/** The step's tasks and episodes: `group_size` episodes of each sampled task, ids `<task>#<step>.<g>`. */
export function planStep(
  cfg: TrainConfig,
  step: number,
  trainTasks: readonly Task[],
): { tasks: Task[]; plan: PlannedEpisode[] } {
  const tasks = sample(trainTasks, cfg.tasks.per_step, createRng(cfg.seed, step, 0x7a5c));
  const baseSeed = mixSeed(cfg.seed, step);
  const plan = tasks.flatMap((task) =>
    Array.from({ length: cfg.algorithm.group_size }, (_, g) => ({
      episodeId: `${task.id}#${step}.${g}`,
      taskId: task.id,
      epoch: g,
      seed: episodeSeed(baseSeed, task.id, g),
    })),
  );
  return { tasks, plan };
}

/**
 * Group rewards (e.g. a judge ranking the G episodes of a task against each other): each
 * task's `group` functions score its finished group, and the turns' returns are assigned
 * again from the new totals. Groups of tasks without them are returned as they are.
 */
export async function scoreGroups(
  groups: readonly EpisodeRecord[][],
  taskMap: ReadonlyMap<string, Task>,
  rewardsFor: RunEpisodesOptions['rewardsFor'],
  signal: AbortSignal,
): Promise<EpisodeRecord[][]> {
  if (!rewardsFor) return [...groups];
  return Promise.all(
    groups.map(async (group) => {
      const task = taskMap.get(group[0]!.taskId)!;
      const rewards = await rewardsFor(task);
      if (!rewards.group?.length) return group;
      return applyGroupRewards(task, group, rewards.group, {
        signal,
        ...(rewards.assignReturns ? { assignReturns: rewards.assignReturns } : {}),
      });
    }),
  );
}

/** The finished (agent-outcome) episodes of each task, in task order, each group by episode index. */
function finishedGroups(tasks: readonly Task[], episodes: readonly EpisodeRecord[]): EpisodeRecord[][] {
  const byTask = new Map<string, EpisodeRecord[]>();
  for (const episode of episodes) {
    if (!isAgentOutcome(episode)) continue;
    const group = byTask.get(episode.taskId) ?? [];
    group.push(episode);
    byTask.set(episode.taskId, group);
  }
  const finished = tasks.map((task) => byTask.get(task.id) ?? []).filter((group) => group.length > 0);
  // Episodes of a group are ordered by their index, whatever order they finished in.
  for (const group of finished) group.sort((a, b) => a.epoch - b.epoch);
  return finished;
}

/** A step's rollouts, played and scored, not yet trained on. */
export interface StepRollouts {
  step: number;
  /** The finished groups, scored (group rewards applied), in task order. */
  groups: EpisodeRecord[][];
  /** Every episode played, the errored ones included. */
  episodes: EpisodeRecord[];
  /** How long the rollouts and the group rewards took, in ms. */
  rolloutMs: number;
  groupMs: number;
}

/**
 * Plays step `step`'s rollouts with `agent` (recorded as run `step-N`), scores the finished
 * groups with the tasks' group rewards, and commits the run.
 */
export async function playStep(
  context: TrainingContext,
  step: number,
  trainTasks: readonly Task[],
  taskMap: ReadonlyMap<string, Task>,
  agent: Agent,
): Promise<StepRollouts> {
  const { folder, signal } = context;
  const { tasks, plan } = planStep(context.cfg, step, trainTasks);
  const runId = TRAINING_RUN_IDS.step(step);
  const startedAt = performance.now();
  const staged = await folder.runs.stage(
    { runId, plan, config: { agent: agent.name, purpose: 'rollout', step, training: folder.dir } },
    (store) =>
      runEpisodes({
        runId,
        tasks,
        plan,
        agent,
        ...context.episodes,
        signal,
        maxAttempts: 2,
        retryDelayMs: 100,
        store,
      }),
  );
  const episodes = staged.records;
  const rolloutMs = performance.now() - startedAt;

  const groupStarted = performance.now();
  const groups = await scoreGroups(
    finishedGroups(tasks, episodes),
    taskMap,
    context.episodes.rewardsFor,
    signal,
  );
  const groupMs = performance.now() - groupStarted;
  // The run holds what the update uses: scored records, and the errored ones as they ended.
  const scored = new Map(groups.flat().map((episode) => [episode.episodeId, episode]));
  await staged.commit(episodes.map((episode) => scored.get(episode.episodeId) ?? episode));
  return { step, groups, episodes, rolloutMs, groupMs };
}

/** The policy versions of the sampled turns of `episodes` (turns without a recorded one left out). */
function turnVersions(episodes: readonly EpisodeRecord[]): number[] {
  return episodes.flatMap((episode) =>
    episode.turns.flatMap((turn) =>
      turn.tokens?.policyVersion === undefined ? [] : [turn.tokens.policyVersion],
    ),
  );
}

/**
 * Trains on a step's rollouts: advantages, token sequences from the recorded ids, the
 * worker's update, then `publish`. Writes the step's metrics row and returns it. The
 * policy's version before this update is `step - 1`; a turn sampled by version v is
 * `step - 1 - v` updates stale.
 */
export async function trainOnRollouts(
  context: TrainingContext,
  rollouts: StepRollouts,
  taskMap: ReadonlyMap<string, Task>,
  deps: RlStepDeps,
): Promise<MetricRow> {
  const { cfg, signal } = context;
  const algorithm = cfg.algorithm;
  const { step, groups, episodes, rolloutMs, groupMs } = rollouts;
  const stepStarted = performance.now();
  const usable = groups.flat();

  const advantages = computeAdvantages(groups, taskMap, {
    estimator: algorithm.name,
    level: algorithm.level,
    scaleByStd: algorithm.scale_by_std,
    pooling: algorithm.pooling,
  });
  // DAPO's dynamic sampling (without resampling): groups without signal leave the batch.
  const filtered = algorithm.filter_groups ? groupsWithSignal(groups, advantages) : undefined;
  const trained = filtered ? filtered.kept.flat() : usable;
  const built: TokenSequence[] = trained.flatMap((episode) =>
    episodeSequences(episode, advantages.get(episode.episodeId) ?? []),
  );
  // The agent never samples past max_len; a longer sequence would come from another agent.
  const sequences = built.filter((sequence) => sequence.ids.length <= deps.maxLen);

  const rewards = usable.map((episode) => episode.reward.total);
  const completionTokens = usable.reduce((sum, episode) => sum + episode.usage.completionTokens, 0);
  const signalGroups = groups.filter((group) =>
    group.some((e) => e.reward.total !== group[0]!.reward.total),
  ).length;
  const anySignal = sequences.some((sequence) => sequence.advantages.some((value) => value !== 0));

  let metrics: StepMetrics = {};
  let updateMs = 0;
  if (sequences.length > 0 && (anySignal || algorithm.kl > 0 || algorithm.entropy > 0)) {
    const updateStarted = performance.now();
    metrics = await deps.trainer.trainStep(sequences, {
      loss: { ...lossConfig(cfg, deps.maxLen), ...deps.correction },
      microBatch: algorithm.micro_batch,
      epochs: algorithm.epochs,
      miniBatches: algorithm.mini_batches,
      signal,
    });
    updateMs = performance.now() - updateStarted;
  }
  const exportMs = metrics.optimizer_steps ? await deps.publish(step) : 0;

  const { time_ms: _workerMs, ...workerMetrics } = metrics;
  const versions = turnVersions(usable);
  const staleness = versions.map((version) => step - 1 - version);
  const trainedTokens = sequences.reduce((sum, s) => sum + s.mask.reduce((a, b) => a + b, 0), 0);
  const totalTokens = sequences.reduce((sum, s) => sum + s.ids.length, 0);
  const row: MetricRow = {
    type: 'train',
    step,
    reward_mean: mean(rewards),
    pass_rate: passRate(rewards, cfg.pass_threshold),
    episodes: usable.length,
    errors: episodes.length - usable.length,
    episode_turns: mean(usable.map((episode) => episode.turns.length)),
    completion_tokens: usable.length === 0 ? 0 : completionTokens / usable.length,
    tool_problems: usable.reduce(
      (sum, episode) => sum + Object.values(episode.stats.toolProblems).reduce((a, b) => a + b, 0),
      0,
    ),
    groups_with_signal: signalGroups,
    dropped_groups: filtered?.dropped ?? 0,
    sequences: sequences.length,
    dropped_sequences: built.length - sequences.length,
    trained_tokens: trainedTokens,
    skipped_update: metrics.optimizer_steps ? 0 : 1,
    ...(versions.length > 0
      ? {
          policy_version_min: Math.min(...versions),
          staleness_max: Math.max(...staleness),
          staleness_mean: mean(staleness),
        }
      : {}),
    ...workerMetrics,
    rollout_ms: rolloutMs,
    group_reward_ms: groupMs,
    update_ms: updateMs,
    export_ms: exportMs,
    step_ms: performance.now() - (deps.waitStartedAt ?? stepStarted),
    // Asynchronous steps: the rollouts ran (partly) during earlier updates; what the update
    // waited for them is the part that did not overlap.
    rollout_wait_ms: Math.max(0, stepStarted - (deps.waitStartedAt ?? stepStarted)),
    rollout_tokens_per_s: rolloutMs > 0 ? (completionTokens / rolloutMs) * 1000 : 0,
    train_tokens_per_s: updateMs > 0 ? (totalTokens / updateMs) * 1000 : 0,
  };
  context.folder.writeRow(row);
  context.log(
    `step ${step}/${cfg.steps}: reward ${mean(rewards).toFixed(3)} pass ${(row.pass_rate as number).toFixed(3)} ` +
      `entropy ${(metrics.entropy ?? 0).toFixed(3)} kl ${(metrics.kl ?? 0).toFixed(4)} ` +
      `rollout ${(rolloutMs / 1000).toFixed(1)}s update ${(updateMs / 1000).toFixed(1)}s` +
      (filtered ? ` dropped ${filtered.dropped}/${groups.length} groups without signal` : ''),
  );
  return row;
}
