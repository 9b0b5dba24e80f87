/**
 * `paddock train`: rollouts through paddock's own episode loop, rewards, advantages, a
 * PyTorch policy-gradient update, a new ONNX policy, and again — wired with the plug-ins
 * of a `Paddock` (every built-in one unless told otherwise).
 */
import { train as runTraining, resumeTraining, type TrainResult } from '../trainers/rl/index.ts';
import { DEFAULT_SANDBOX_KIND, createPaddock, type OpenedRun, type Paddock } from './paddock.ts';

export interface TrainCommandOptions {
  /** The plug-ins to train with. @default the built-in ones */
  paddock?: Paddock;
  /** The sandbox kind for tasks with an environment. @default `docker` */
  sandbox?: string;
  signal?: AbortSignal;
  /** Progress lines. */
  log?: (line: string) => void;
}

async function withPlugins(
  options: TrainCommandOptions,
  run: (paddock: Paddock, plugins: OpenedRun) => Promise<TrainResult>,
): Promise<TrainResult> {
  const paddock = options.paddock ?? createPaddock();
  const plugins = await paddock.openRun();
  try {
    return await run(paddock, plugins);
  } finally {
    await plugins.close();
  }
}

function trainOptions(paddock: Paddock, plugins: OpenedRun, options: TrainCommandOptions) {
  const sandboxProvider = paddock
    .sandboxKind(options.sandbox ?? DEFAULT_SANDBOX_KIND)
    .create({ imageMap: {} });
  return {
    loadTasks: (paths: readonly string[]) => paddock.loadSuite(paths),
    toolProviders: plugins.toolProviders,
    rewardsFor: plugins.rewardsFor,
    sandboxProvider,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.log ? { log: options.log } : {}),
  };
}

/** Trains from a `train.yaml`. Rejects with CONFIG_INVALID naming the file and field. */
export function trainFromConfig(configPath: string, options: TrainCommandOptions = {}): Promise<TrainResult> {
  return withPlugins(options, async (paddock, plugins) => {
    const trainOptionsOf = trainOptions(paddock, plugins, options);
    try {
      return await runTraining(configPath, trainOptionsOf);
    } finally {
      await trainOptionsOf.sandboxProvider.closeAll?.();
    }
  });
}

/** Continues a training run from its last checkpoint (after a crash or kill -9). */
export function resumeTrainingRun(dir: string, options: TrainCommandOptions = {}): Promise<TrainResult> {
  return withPlugins(options, async (paddock, plugins) => {
    const trainOptionsOf = trainOptions(paddock, plugins, options);
    try {
      return await resumeTraining(dir, trainOptionsOf);
    } finally {
      await trainOptionsOf.sandboxProvider.closeAll?.();
    }
  });
}
