/**
 * The Docker plug-in: the `docker` sandbox kind (the default), its engine check, and the
 * reaping of what a crashed run left behind.
 *
 * Registering it loads nothing of Docker: the provider, the engine client (dockerode) and
 * the reaper are imported when a run first uses them, so that `paddock --help` and
 * `paddock tasks …` start without them.
 */
import type {
  EnvironmentSpec,
  PaddockPlugin,
  RunSandboxProvider,
  SandboxKindOptions,
} from '../../harness/index.ts';
import type { DockerSandboxProvider } from './provider.ts';

/**
 * A `RunSandboxProvider` that makes the real `DockerSandboxProvider` on its first call.
 * The provider's own errors (a malformed `PADDOCK_IMAGE_MAP`: CONFIG_INVALID) come from
 * that first call instead of from `create`.
 */
function lazyDockerProvider(options: SandboxKindOptions): RunSandboxProvider {
  let provider: Promise<DockerSandboxProvider> | undefined;
  const real = (): Promise<DockerSandboxProvider> =>
    (provider ??= import('./provider.ts').then(
      ({ DockerSandboxProvider }) =>
        new DockerSandboxProvider({
          imageMap: options.imageMap,
          ...(options.onWarning ? { onWarning: options.onWarning } : {}),
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        }),
    ));
  return {
    kind: 'docker',
    start: async (spec, startOptions) => (await real()).start(spec, startOptions),
    prepare: async (spec: EnvironmentSpec, prepareOptions?: { signal?: AbortSignal }) =>
      (await real()).prepare(spec, prepareOptions),
    closeAll: async () => {
      // Nothing was started when the provider was never made.
      if (provider === undefined) return;
      await (await provider.catch(() => undefined))?.closeAll();
    },
  };
}

export const dockerPlugin: PaddockPlugin = {
  name: 'docker',
  sandboxes: {
    docker: {
      description: 'containers of the local Docker engine (DOCKER_HOST), one per episode',
      create: (options) => lazyDockerProvider(options),
      check: async () => {
        const { checkEngine } = await import('./engine.ts');
        await checkEngine();
      },
      reap: async (runId) => {
        const { reapContainers } = await import('./reaper.ts');
        await reapContainers({ runId });
      },
    },
  },
};
