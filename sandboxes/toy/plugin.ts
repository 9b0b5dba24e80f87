/** The toy plug-in: the `toy:` section of the toy suite's tasks and their tools (lookup, calc, submit). */
import type { PaddockPlugin } from '../../harness/index.ts';
import { toyTaskExtension, toyToolProvider } from './index.ts';

export const toyPlugin: PaddockPlugin = {
  name: 'toy',
  taskSections: { toy: toyTaskExtension },
  open: () => ({ toolProviders: [toyToolProvider] }),
};
