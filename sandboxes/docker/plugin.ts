/**
 * The Docker plug-in: the `docker` sandbox kind (the default), its engine check, and the
 * reaping of what a crashed run left behind.
 */
import type { PaddockPlugin } from '../../harness/index.ts';
import { checkEngine } from './engine.ts';
import { DockerSandboxProvider } from './provider.ts';
import { reapContainers } from './reaper.ts';

export const dockerPlugin: PaddockPlugin = {
  name: 'docker',
  sandboxes: {
    docker: {
      description: 'containers of the local Docker engine (DOCKER_HOST), one per episode',
      create: (options) =>
        new DockerSandboxProvider({
          imageMap: options.imageMap,
          ...(options.onWarning ? { onWarning: options.onWarning } : {}),
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        }),
      check: async () => {
        await checkEngine();
      },
      reap: async (runId) => {
        await reapContainers({ runId });
      },
    },
  },
};
