/**
 * The browser plug-in: the `browser:` section of task files, a browser tool provider per
 * run (Chromium is launched only when a web episode needs it), and the `page` turn reward
 * kind that scores a task's page after each turn.
 */
import type { PaddockPlugin } from '../../harness/index.ts';
import { BrowserToolProvider, pageTurnReward } from './provider.ts';
import { browserTaskExtension } from './schema.ts';

export const browserPlugin: PaddockPlugin = {
  name: 'browser',
  taskSections: { browser: browserTaskExtension },
  open: () => {
    const provider = new BrowserToolProvider();
    return {
      toolProviders: [provider],
      turnRewardKinds: { page: (task, options) => pageTurnReward(provider, task, options) },
      close: () => provider.close(),
    };
  },
};
