/**
 * The `docker` sandbox kind as the composition root gives it — a provider that imports
 * the Docker implementation on its first call (sandboxes/docker/plugin.ts) — passes the
 * sandbox conformance suite of `paddock/testing`; its containers are removed by its
 * `closeAll` and the kind's `reap`.
 */
import { createPaddock } from '../../../cli/paddock.ts';
import { describeSandboxConformance } from '../../../testing/index.ts';
import { baseSpec, ensureBaseImage, testRunId } from './helpers.ts';

const kind = createPaddock().sandboxKind('docker');
const provider = kind.create({ imageMap: {} });

describeSandboxConformance(
  'docker (plug-in)',
  async () => {
    await ensureBaseImage();
    return provider;
  },
  {
    spec: baseSpec({ workdir: '/work' }),
    runId: testRunId('plugin-conformance'),
    timeoutMs: 120_000,
    cleanup: async (_provider, runId) => {
      await provider.closeAll?.();
      await kind.reap?.(runId);
    },
  },
);
