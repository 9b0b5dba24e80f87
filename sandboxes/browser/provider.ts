/**
 * The browser plug-in: a ToolProvider that gives every episode of a task with a
 * `browser:` section its own isolated context in one shared Chromium, its own origin
 * (static files or the task's app on a fresh loopback port, a server inside the task's
 * Docker sandbox relayed to one, or a given URL), the browser
 * tools, a first observation, and a score read from the page at the end.
 */
import type {
  Sandbox,
  SandboxLabels,
  Task,
  ToolProvider,
  TurnReward,
  TurnRewardFunction,
} from '../../harness/index.ts';
import { ERROR_CODES, PaddockError } from '../../harness/index.ts';
import { BrowserPool, type BrowserPoolOptions } from './browser-pool.ts';
import { OriginPolicy, originOf } from './origins.ts';
import { checkPageRewardTask, resolveBrowserConfig } from './schema.ts';
import { loadScorer } from './scorer.ts';
import { GroundingTurnScorer } from './grounding.ts';
import { BrowserSession } from './session.ts';
import { startSandboxApp, type SpawningSandbox } from './sandbox-port.ts';
import { serveStaticSite, startApp, type RunningSite } from './site-server.ts';

/** Options of the provider: those of its shared browser. */
export type BrowserToolProviderOptions = BrowserPoolOptions;

export class BrowserToolProvider implements ToolProvider {
  /** Reads `task.extensions.browser`. */
  readonly name = 'browser';
  /** The shared browser (exposed for benchmarks and diagnostics). */
  readonly pool: BrowserPool;
  /** The sessions open now, closed by `close()`. */
  private readonly live = new Set<BrowserSession>();

  constructor(options: BrowserToolProviderOptions = {}) {
    this.pool = new BrowserPool(options);
  }

  /**
   * Opens the episode's browser session, or returns undefined when the task has no
   * `browser:` section. The browser is launched on first use (and again after a crash).
   *
   * `context.sandbox` is the episode's sandbox: a `browser.sandbox` source needs it (and its
   * `spawn`).
   *
   * @throws PaddockError CONFIG_INVALID (the section, the scorer file or the start URL is
   *   wrong, or `browser.sandbox` without a sandbox that can spawn; not retryable);
   *   SANDBOX_START_FAILED (retryable: the browser, the site, the app, the sandbox's server
   *   or the start page failed); ABORTED.
   */
  async open(
    task: Task,
    context: { sandbox?: Sandbox; labels: SandboxLabels; signal: AbortSignal },
  ): Promise<BrowserSession | undefined> {
    const section = task.extensions[this.name];
    if (section === undefined) return undefined;
    const config = resolveBrowserConfig(section, task.dir);
    const scorer = config.scorer ? await loadScorer(config.scorer) : undefined;
    const { signal } = context;
    let site: RunningSite | undefined;
    try {
      let base: string;
      if (config.source.kind === 'site') {
        // The scorer is never served, even when an author puts it inside site/.
        site = await serveStaticSite(config.source.root, {
          deny: config.scorer?.kind === 'file' ? [config.scorer.path] : [],
        });
        base = `${site.origin}/`;
      } else if (config.source.kind === 'app') {
        site = await startApp(config.source, { signal });
        base = `${site.origin}/`;
      } else if (config.source.kind === 'sandbox') {
        site = await startSandboxApp(sandboxOf(task, context.sandbox), config.source, { signal });
        base = `${site.origin}/`;
      } else {
        base = config.source.url;
      }
      const policy = new OriginPolicy([originOf(base)!, ...config.allowedOrigins]);
      const startUrl =
        config.source.kind === 'url' && config.start === '/'
          ? config.source.url
          : new URL(config.start, base).href;
      if (!policy.allows(startUrl)) {
        throw new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          `task ${task.id}: browser.start ${config.start} is not on an allowed origin (${policy.list().join(', ')})`,
        );
      }
      const lease = await this.pool.acquire(signal);
      // Not a const: a session that fails to open closes itself (calling onClose) before
      // `open` returns, and reading a const then would throw a ReferenceError instead of
      // the open's own error (prefer-const cannot see that).
      let session: BrowserSession | undefined;
      // eslint-disable-next-line prefer-const
      session = await BrowserSession.open(
        {
          episodeId: context.labels.episodeId,
          lease,
          config,
          policy,
          startUrl,
          ...(site ? { site } : {}),
          ...(scorer ? { scorer } : {}),
          onClose: () => {
            if (session) this.live.delete(session);
          },
        },
        signal,
      );
      this.live.add(session);
      return session;
    } catch (error) {
      await site?.close();
      throw error;
    }
  }

  /** Closes every open session and the browser. Never rejects; a later `open` launches a new browser. */
  async close(): Promise<void> {
    await Promise.all([...this.live].map((session) => session.close()));
    await this.pool.close();
  }
}

/**
 * The episode's sandbox, when it can start processes (what `browser.sandbox` needs).
 *
 * @throws PaddockError CONFIG_INVALID otherwise.
 */
function sandboxOf(task: Task, sandbox: Sandbox | undefined): SpawningSandbox {
  if (sandbox === undefined) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `task ${task.id}: browser.sandbox needs the task's Docker sandbox (the task has ${task.environment ? 'an environment, but no sandbox was given to the browser' : 'environment: false'})`,
    );
  }
  if (typeof sandbox.spawn !== 'function') {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `task ${task.id}: browser.sandbox needs a sandbox that can start processes (spawn); sandbox ${sandbox.id} cannot`,
    );
  }
  return sandbox as SpawningSandbox;
}

/** Options of `browserTurnReward`. */
export interface BrowserTurnRewardOptions {
  /** @default 'browser' */
  name?: string;
  /** @default 1 */
  weight?: number;
  /**
   * `delta`: the change of the page's score since the previous turn (since the untouched page before the first),
   * so that the turn rewards of an episode sum to its final page score; `value`: the score
   * itself after every turn. @default 'delta'
   */
  mode?: 'delta' | 'value';
}

/**
 * A turn reward that runs the task's scorer on the page after every turn. Opened for an
 * episode, it takes the episode's browser session (`episode.sessions`, under the provider's
 * name) and, for `delta`, scores the untouched page as the baseline of the first turn; the
 * opened reward keeps the last score. Turns of episodes without a browser session or
 * scorer score 0 (see `pageTurnReward` for a reward that insists on a scorer).
 *
 * `open` rejects with CONFIG_INVALID when the episode's session under the provider's name
 * is not a browser session (another provider took the name), and as `scoreNow` when
 * scoring the untouched page fails.
 */
export function browserTurnReward(
  provider: BrowserToolProvider,
  options: BrowserTurnRewardOptions = {},
): TurnRewardFunction {
  const mode = options.mode ?? 'delta';
  const name = options.name ?? 'browser';
  return {
    name,
    weight: options.weight ?? 1,
    async open(episode): Promise<TurnReward> {
      const session = episode.sessions.get(provider.name);
      if (session === undefined) return { score: async () => 0 };
      if (!(session instanceof BrowserSession)) {
        throw new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          `turn reward ${name}: the episode's "${provider.name}" session is not a browser session`,
        );
      }
      // The score of the untouched page is the baseline of the first turn's delta.
      let last = mode === 'delta' ? ((await session.scoreNow(episode.signal)) ?? 0) : 0;
      return {
        async score({ signal }) {
          const value = (await session.scoreNow(signal)) ?? 0;
          const reward = mode === 'delta' ? value - last : value;
          last = value;
          return reward;
        },
      };
    },
  };
}

/**
 * The turn reward of a `page:` entry in a task's `rewards.turn` (see `browserTurnReward`):
 * made for `task` only when it has a `browser:` section with a scorer.
 *
 * @throws PaddockError CONFIG_INVALID when the task has no browser section or no `browser.score`.
 */
export function pageTurnReward(
  provider: BrowserToolProvider,
  task: Task,
  options: BrowserTurnRewardOptions = {},
): TurnRewardFunction {
  checkPageRewardTask(task, provider.name);
  return browserTurnReward(provider, options);
}

/**
 * A turn reward that scores where the agent's coordinate actions of each turn pointed,
 * against the task's `browser.grounding` targets (see `GroundingTurnScorer`): `hit` (1
 * inside the element) or `gaussian_point` (GUI-G²'s point reward). Component `grounding`
 * unless named. An episode without a browser session scores 0 on every turn.
 */
export function groundingTurnReward(
  kind: 'hit' | 'gaussian_point',
  options: { name?: string; weight?: number; provider?: string } = {},
): TurnRewardFunction {
  const name = options.name ?? 'grounding';
  const key = options.provider ?? 'browser';
  return {
    name,
    weight: options.weight ?? 1,
    open(episode): TurnReward {
      const session = episode.sessions.get(key);
      if (session === undefined) return { score: async () => 0 };
      if (!(session instanceof BrowserSession)) {
        throw new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          `turn reward ${name}: the episode's "${key}" session is not a browser session`,
        );
      }
      const scorer = new GroundingTurnScorer(kind);
      return { score: async ({ turn }) => scorer.score(session.pointingActions(turn.index)) };
    },
  };
}
