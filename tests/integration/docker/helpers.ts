/**
 * Shared set-up of the Docker integration tests: the base image (made once per machine
 * with debootstrap when missing), a spec on it, and a run id per test file whose
 * containers are reaped afterwards.
 */
import { randomBytes } from 'node:crypto';
import type { EnvironmentSpec } from '../../../harness/task.ts';
import { BASE_IMAGE, baseImageExists, bootstrapBaseImage } from '../../../sandboxes/docker/index.ts';

/** Makes sure `paddock/base:bookworm` exists (about a minute the first time on a machine). */
export async function ensureBaseImage(): Promise<void> {
  if (!(await baseImageExists())) await bootstrapBaseImage();
}

/** A spec on the base image with the contract's defaults; `overrides` win. */
export function baseSpec(overrides: Partial<EnvironmentSpec> = {}): EnvironmentSpec {
  return {
    image: BASE_IMAGE,
    cpus: 1,
    memoryMb: 512,
    pids: 256,
    network: false,
    env: {},
    files: [],
    ...overrides,
  };
}

/** A run id unique to one test file, so that its containers can be reaped alone. */
export function testRunId(name: string): string {
  return `it-docker-${name}-${randomBytes(3).toString('hex')}`;
}
