/**
 * An inference server as the rollout engine (`rollout.engine: server`): vLLM or SGLang,
 * OpenAI-compatible with token ids. The rollouts are `agents/openai` episodes with
 * token-exact turns; after each update the trainer writes the new policy to disk and the
 * server loads it through its own endpoint, inside the policy gate (no turn in flight), so
 * every turn's recorded version is the one that sampled it. See `server-api.ts` for each
 * endpoint and the source it was read from.
 *
 * The server may run already (`rollout.server.url`), or paddock starts it from
 * `rollout.server.command` — `{model}` replaced by a folder the trainer owns,
 * `<output>/served/model`, holding the warm-started weights — and stops it at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { OpenAIAgent } from '../../agents/openai/index.ts';
import { ERROR_CODES, PaddockError, describeError, type Agent } from '../../harness/index.ts';
import type { TrainConfig } from './config.ts';
import { trainerError } from './errors.ts';
import { PolicyGate, versionedAgents, type EngineAgents } from './policy-versions.ts';
import type { RolloutEngine } from './rollout-engine.ts';
import type { RunFolder } from './run-folder.ts';
import { pad } from './runs.ts';
import { serverApi, type ServerApi } from './server-api.ts';
import type { TorchTrainer } from './torch-trainer.ts';

type ServerConfig = NonNullable<TrainConfig['rollout']['server']>;

export interface ServerEngineOptions {
  cfg: TrainConfig;
  folder: RunFolder;
  trainer: TorchTrainer;
  signal: AbortSignal;
  log: (line: string) => void;
}

export class ServerEngine implements RolloutEngine {
  readonly gate = new PolicyGate();
  private readonly agents: EngineAgents;
  private readonly openai: OpenAIAgent[];
  private served: { dir: string; adapter?: string } | undefined;
  /** Tells this engine's adapter names from those of an earlier run on the same server. */
  private readonly session = Date.now().toString(36);
  private closed = false;

  private constructor(
    private readonly options: ServerEngineOptions,
    private readonly api: ServerApi,
    private readonly sync: 'weights' | 'lora',
    private readonly baseModel: string,
    private readonly process: ChildProcess | undefined,
  ) {
    const { cfg } = options;
    const server = cfg.rollout.server!;
    const agent = (name: string, temperature: number): OpenAIAgent =>
      new OpenAIAgent({
        model: baseModel,
        baseUrl: `${api.url}/v1`,
        family: server.kind,
        ...(server.api_key ? { apiKey: server.api_key } : {}),
        temperature,
        topP: cfg.sampling.top_p,
        maxTokens: cfg.sampling.max_new_tokens,
        seed: 'episode',
        tokenExact: true,
        tito: server.tito,
        ...(server.logprobs_mode ? { logprobsMode: server.logprobs_mode } : {}),
        timeoutMs: server.timeout_sec * 1000,
        name,
      });
    const rollout = agent(`${server.kind}:train`, cfg.sampling.temperature);
    const sampled = agent(`${server.kind}:eval`, cfg.eval.temperature ?? cfg.sampling.temperature);
    const greedy = cfg.eval.greedy ? agent(`${server.kind}:greedy`, 0) : undefined;
    this.openai = [rollout, sampled, ...(greedy ? [greedy] : [])];
    this.agents = versionedAgents({ rollout, sampled, ...(greedy ? { greedy } : {}) }, this.gate);
  }

  /**
   * Reaches the server (starting it from `command` first when it does not answer), and
   * learns the served model's name. Rejects with CONFIG_INVALID for a config the server
   * cannot serve, TRAINER_FAILED when it does not come up.
   */
  static async start(options: ServerEngineOptions): Promise<ServerEngine> {
    const { cfg, folder, trainer, signal, log } = options;
    const server = cfg.rollout.server!;
    // (train.yaml's schema refuses sync: lora without policy.lora.)
    const sync = server.sync ?? (cfg.policy.lora ? 'lora' : 'weights');
    const api = serverApi(server.kind, server.url, server.api_key);
    let child: ChildProcess | undefined;
    if (!(await api.healthy(signal))) {
      if (!server.command) {
        throw trainerError(
          `the inference server at ${server.url} does not answer (${api.healthPath}), and rollout.server.command is not set to start it`,
        );
      }
      // The server starts from a folder the trainer owns and overwrites: the current weights.
      const modelDir = folder.path('served', 'model');
      rmSync(modelDir, { recursive: true, force: true });
      mkdirSync(folder.path('served'), { recursive: true });
      await trainer.saveHf(modelDir, server.dtype);
      child = startServer(server, modelDir, folder.path('server.log'));
      log(`rollout server: started \`${server.command}\` (pid ${child.pid}), waiting for ${server.url}`);
      try {
        await waitUntilHealthy(api, child, server, folder.path('server.log'), signal);
      } catch (error) {
        await stopServer(child);
        throw error;
      }
    }
    let model = server.model;
    if (!model) {
      try {
        model = await api.firstModel(signal);
      } catch (error) {
        if (child) await stopServer(child);
        throw error;
      }
    }
    log(`rollout server: ${server.kind} at ${server.url}, model ${model}, new policies as ${sync}`);
    return new ServerEngine(options, api, sync, model, child);
  }

  get agent(): Agent {
    return this.agents.rollout;
  }

  get evalAgents(): { sampled: Agent; greedy?: Agent } {
    const { sampled, greedy } = this.agents;
    return { sampled, ...(greedy ? { greedy } : {}) };
  }

  /**
   * Writes the trainer's weights (or adapter) under `<output>/served/` and has the server
   * load them as version `step`; the previous files are removed once it has.
   */
  async publish(step: number): Promise<number> {
    const started = performance.now();
    const { folder, trainer, cfg, signal } = this.options;
    const server = cfg.rollout.server!;
    const previous = this.served;
    if (this.sync === 'weights') {
      const dir = folder.path('served', `step-${pad(step)}`);
      rmSync(dir, { recursive: true, force: true });
      await trainer.saveHf(dir, server.dtype);
      await this.gate.swap(step, () => this.api.loadWeights(dir, step, signal));
      this.served = { dir };
    } else {
      const dir = folder.path('served', `adapter-${pad(step)}`);
      rmSync(dir, { recursive: true, force: true });
      await trainer.saveAdapter(dir);
      // Named per engine session too: a server that outlived a killed run may hold its names.
      const adapter = `paddock-${this.session}-step-${step}`;
      await this.gate.swap(step, async () => {
        await this.api.loadAdapter(adapter, dir, signal);
        const model = this.api.adapterModel(this.baseModel, adapter);
        for (const agent of this.openai) agent.setModel(model);
      });
      this.served = { dir, adapter };
      if (previous?.adapter) await this.api.unloadAdapter(previous.adapter, signal);
    }
    if (previous && previous.dir !== this.served.dir) rmSync(previous.dir, { recursive: true, force: true });
    return performance.now() - started;
  }

  /** Closes the agents and stops the server paddock started. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const agent of Object.values(this.agents)) await agent?.close?.();
    if (this.process) await stopServer(this.process);
  }
}

/** Starts `command` in its own process group, output appended to `logFile`. */
function startServer(server: ServerConfig, modelDir: string, logFile: string): ChildProcess {
  const command = server.command!.replaceAll('{model}', modelDir);
  const child = spawn('/bin/sh', ['-c', command], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PADDOCK_MODEL: modelDir },
  });
  const append = (chunk: Buffer): void => appendFileSync(logFile, chunk);
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  child.on('error', (error) =>
    appendFileSync(logFile, `paddock: cannot start the server: ${describeError(error)}\n`),
  );
  return child;
}

/** SIGTERM to the server's process group, SIGKILL after 15 s. */
async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signalGroup = (name: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, name);
    } catch {
      // Gone already.
    }
  };
  signalGroup('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      signalGroup('SIGKILL');
      resolve();
    }, 15_000);
  });
  await Promise.race([exited, killed]);
  clearTimeout(timer);
}

/** Polls the health endpoint once a second until it answers, the process exits or time is up. */
async function waitUntilHealthy(
  api: ServerApi,
  child: ChildProcess,
  server: ServerConfig,
  logFile: string,
  signal: AbortSignal,
): Promise<void> {
  const deadline = performance.now() + server.start_timeout_sec * 1000;
  for (;;) {
    if (signal.aborted)
      throw new PaddockError(ERROR_CODES.ABORTED, 'aborted while the inference server started');
    if (child.exitCode !== null || child.signalCode !== null) {
      throw trainerError(
        `the inference server command exited (${child.signalCode ? `signal ${child.signalCode}` : `code ${child.exitCode}`}) before ${server.url} answered; its output is in ${logFile}`,
      );
    }
    if (await api.healthy(signal)) return;
    if (performance.now() > deadline) {
      throw trainerError(
        `the inference server did not answer ${server.url}${api.healthPath} within ${server.start_timeout_sec} s (rollout.server.start_timeout_sec); its output is in ${logFile}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
