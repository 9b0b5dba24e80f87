/**
 * The toy plug-in: the `toy:` section of the toy suite's tasks and their tools (lookup,
 * calc, submit). Its module is imported when task files are first read or a run opens,
 * not when the plug-in is registered.
 */
import type { PaddockPlugin } from '../../harness/index.ts';

export const toyPlugin: PaddockPlugin = {
  name: 'toy',
  taskSections: { toy: { load: async () => (await import('./index.ts')).toyTaskExtension } },
  open: async () => ({ toolProviders: [(await import('./index.ts')).toyToolProvider] }),
};
