/**
 * `DockerSandboxProvider` passes the sandbox conformance suite of `paddock/testing`, on
 * the base image; its containers are removed afterwards (and reaped by run id).
 */
import { DockerSandboxProvider, reapContainers } from '../../../sandboxes/docker/index.ts';
import { describeSandboxConformance } from '../../../testing/index.ts';
import { baseSpec, ensureBaseImage, testRunId } from './helpers.ts';

const provider = new DockerSandboxProvider();

describeSandboxConformance(
  'docker',
  async () => {
    await ensureBaseImage();
    return provider;
  },
  {
    spec: baseSpec({ workdir: '/work' }),
    runId: testRunId('conformance'),
    timeoutMs: 120_000,
    cleanup: async (_provider, runId) => {
      await provider.closeAll();
      await reapContainers({ runId });
    },
  },
);
