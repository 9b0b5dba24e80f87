/**
 * The browser plug-in: the `browser:` section of task files, a browser tool provider per
 * run (Chromium is launched only when a web episode needs it), and the `page` turn reward
 * kind that scores a task's page after each turn.
 *
 * Registering it loads nothing of the browser: the section's schema is imported when
 * task files are first read, and the provider (playwright-core) when the first web
 * episode of a run opens its session, so a run without web tasks never loads it.
 */
import type { PaddockPlugin, ToolProvider, TurnRewardFunction } from '../../harness/index.ts';
import type { BrowserToolProvider } from './provider.ts';

export const browserPlugin: PaddockPlugin = {
  name: 'browser',
  taskSections: {
    browser: { load: async () => (await import('./schema.ts')).browserTaskExtension },
  },
  open: async () => {
    // The schema module is light (zod, which loading task files has loaded already).
    const { checkGroundingRewardTask, checkPageRewardTask } = await import('./schema.ts');
    let made: Promise<BrowserToolProvider> | undefined;
    const real = (): Promise<BrowserToolProvider> =>
      (made ??= import('./provider.ts').then(({ BrowserToolProvider }) => new BrowserToolProvider()));
    const provider: ToolProvider = {
      name: 'browser',
      open: async (task, context) =>
        task.extensions.browser === undefined ? undefined : (await real()).open(task, context),
    };
    return {
      toolProviders: [provider],
      turnRewardKinds: {
        page: (task, options): TurnRewardFunction => {
          checkPageRewardTask(task, provider.name);
          return {
            name: options.name,
            weight: options.weight,
            open: async (episode) => {
              const { browserTurnReward } = await import('./provider.ts');
              return browserTurnReward(await real(), options).open(episode);
            },
          };
        },
        grounding: (task, options): TurnRewardFunction => {
          checkGroundingRewardTask(task, provider.name);
          const kind = options.kind === 'hit' ? 'hit' : 'gaussian_point';
          return {
            name: options.name,
            weight: options.weight,
            open: async (episode) => {
              const { groundingTurnReward } = await import('./provider.ts');
              return groundingTurnReward(kind).open(episode);
            },
          };
        },
      },
      close: async () => {
        // A provider that failed to load holds nothing to close.
        if (made)
          await made.then(
            (browser) => browser.close(),
            () => undefined,
          );
      },
    };
  },
};
