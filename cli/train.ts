/**
 * `paddock train`: rollouts through paddock's own episode loop, rewards, advantages, a
 * PyTorch policy-gradient update, a new ONNX policy, and again — wired with the plug-ins
 * of a `Paddock` (every built-in one unless told otherwise).
 */
import { resolve } from 'node:path';
import {
  loadTrainConfig,
  train as runTraining,
  resumeTraining,
  type TrainOptions,
  type TrainResult,
} from '../trainers/rl/index.ts';
import { DEFAULT_SANDBOX_KIND, createPaddock, type Paddock } from './paddock.ts';

export interface TrainCommandOptions {
  /** The plug-ins to train with. @default the built-in ones */
  paddock?: Paddock;
  /** The sandbox kind for tasks with an environment. @default `docker` */
  sandbox?: string;
  signal?: AbortSignal;
  /** Progress lines: the trainer's, and the steps of image builds. */
  log?: (line: string) => void;
}

/** Runs `run` with the trainer's options wired from the plug-ins; closes what they opened. */
async function withPlugins(
  options: TrainCommandOptions,
  run: (trainOptions: TrainOptions) => Promise<TrainResult>,
): Promise<TrainResult> {
  const paddock = options.paddock ?? createPaddock();
  const sandboxKind = paddock.sandboxKind(options.sandbox ?? DEFAULT_SANDBOX_KIND);
  const plugins = await paddock.openRun();
  const sandboxProvider = sandboxKind.create({
    imageMap: {},
    ...(options.log ? { onProgress: options.log } : {}),
  });
  try {
    return await run({
      loadTasks: (paths: readonly string[]) => paddock.loadSuite(paths),
      toolProviders: plugins.toolProviders,
      rewardsFor: plugins.rewardsFor,
      sandboxProvider,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
  } finally {
    await sandboxProvider.closeAll?.();
    await plugins.close();
  }
}

/** Trains from a `train.yaml`. Rejects with CONFIG_INVALID naming the file and field. */
export function trainFromConfig(
  configPath: string,
  options: TrainCommandOptions = {},
  overrides: TrainOverrides = {},
): Promise<TrainResult> {
  const config = loadTrainConfig(configPath);
  if (overrides.seed !== undefined) config.seed = overrides.seed;
  if (overrides.output !== undefined) config.output = resolve(overrides.output);
  return withPlugins(options, (trainOptions) => runTraining(config, trainOptions));
}

/** What `paddock train --seed --output` change of the file's config. */
export interface TrainOverrides {
  seed?: number;
  /** Relative to the working folder (the file's `output` is relative to the file). */
  output?: string;
}

/** Continues a training run from its last checkpoint (after a crash or kill -9). */
export function resumeTrainingRun(dir: string, options: TrainCommandOptions = {}): Promise<TrainResult> {
  return withPlugins(options, (trainOptions) => resumeTraining(dir, trainOptions));
}
