/**
 * The browser plug-in: the `browser:` section of task files, a browser tool provider per
 * run (Chromium is launched only when a web episode needs it), and the `page` turn reward
 * kind that scores a task's page after each turn.
 *
 * Registering it loads nothing of the browser: the section's schema is imported when
 * task files are first read, and the provider (playwright-core) when a run opens.
 */
import type { PaddockPlugin } from '../../harness/index.ts';

export const browserPlugin: PaddockPlugin = {
  name: 'browser',
  taskSections: {
    browser: { load: async () => (await import('./schema.ts')).browserTaskExtension },
  },
  open: async () => {
    const { BrowserToolProvider, pageTurnReward } = await import('./provider.ts');
    const provider = new BrowserToolProvider();
    return {
      toolProviders: [provider],
      turnRewardKinds: { page: (task, options) => pageTurnReward(provider, task, options) },
      close: () => provider.close(),
    };
  },
};
