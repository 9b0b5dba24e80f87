/**
 * `paddock train`: rollouts through paddock's own episode loop, rewards, advantages, a
 * PyTorch policy-gradient update, a new ONNX policy, and again — wired with every plug-in.
 */
import { train as runTraining, resumeTraining, type TrainResult } from '../trainers/rl/index.ts';
import { RunPlugins, loadSuite } from './plugins.ts';

export interface TrainCommandOptions {
  signal?: AbortSignal;
  /** Progress lines. */
  log?: (line: string) => void;
}

async function withPlugins(run: (plugins: RunPlugins) => Promise<TrainResult>): Promise<TrainResult> {
  const plugins = new RunPlugins();
  try {
    return await run(plugins);
  } finally {
    await plugins.close();
  }
}

function trainOptions(plugins: RunPlugins, options: TrainCommandOptions) {
  return {
    loadTasks: (paths: readonly string[]) => loadSuite(paths),
    toolProviders: plugins.toolProviders,
    rewardsFor: plugins.rewardsFor,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.log ? { log: options.log } : {}),
  };
}

/** Trains from a `train.yaml`. Rejects with CONFIG_INVALID naming the file and field. */
export function trainFromConfig(configPath: string, options: TrainCommandOptions = {}): Promise<TrainResult> {
  return withPlugins((plugins) => runTraining(configPath, trainOptions(plugins, options)));
}

/** Continues a training run from its last checkpoint (after a crash or kill -9). */
export function resumeTrainingRun(dir: string, options: TrainCommandOptions = {}): Promise<TrainResult> {
  return withPlugins((plugins) => resumeTraining(dir, trainOptions(plugins, options)));
}
