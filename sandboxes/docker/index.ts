/**
 * paddock's Docker sandbox: the `SandboxProvider` / `Sandbox` contracts of
 * `harness/sandbox.ts` on a local Docker engine through dockerode (no docker CLI).
 *
 * - `checkEngine()` — ping the engine once up front (one clear ENGINE_UNAVAILABLE).
 * - `bootstrapBaseImage()` — make `paddock/base:bookworm` with debootstrap, no registry.
 * - `DockerSandboxProvider` — images (local, image-mapped, or built from a Dockerfile and
 *   cached by content hash) and locked-down containers with a long-lived shell.
 * - `reapContainers()` — remove containers left behind by crashed runs.
 */

export {
  /** Pings the engine; throws ENGINE_UNAVAILABLE with how to start it. */
  checkEngine,
  /** The dockerode client for `DOCKER_HOST` or the local socket. */
  dockerClient,
  /** Where the engine is, as read from `DOCKER_HOST`. */
  resolveEngineEndpoint,
  /** The socket used when `DOCKER_HOST` is unset. */
  DEFAULT_DOCKER_SOCKET,
} from './engine.ts';
export type { EngineEndpoint, EngineInfo, EngineOptions } from './engine.ts';

export {
  /** Makes the base image with debootstrap + image import; idempotent. */
  bootstrapBaseImage,
  /** True when the base image exists locally. */
  baseImageExists,
  /** The first Debian mirror among the host's apt sources. */
  findDebianMirror,
  /** `paddock/base:bookworm`. */
  BASE_IMAGE,
  /** Packages the base image adds to debootstrap's minbase. */
  BASE_PACKAGES,
} from './base-image.ts';
export type { BootstrapOptions, BootstrapResult } from './base-image.ts';

export {
  /** Starts Docker sandboxes; builds and maps images. */
  DockerSandboxProvider,
  /** Capabilities added back after dropping all. */
  DEFAULT_CAPABILITIES,
  /** Names of the labels on every paddock container. */
  LABELS,
} from './provider.ts';
export type { DockerSandboxProviderOptions } from './provider.ts';

export {
  /** A running Docker sandbox (what `DockerSandboxProvider.start` returns). */
  DockerSandbox,
} from './sandbox.ts';
export {
  /** Default per-command timeout, ms. */
  DEFAULT_EXEC_TIMEOUT_MS,
  /** Default cap of each output stream, bytes. */
  DEFAULT_MAX_OUTPUT_BYTES,
} from './exec.ts';
export type { DockerSandboxTuning } from './exec.ts';

export {
  /** `PADDOCK_IMAGE_MAP` merged with explicit substitutions. */
  effectiveImageMap,
  /** Builds a task's Dockerfile into `paddock-task:<hash>` (cached). */
  buildTaskImage,
  /** Finds a local image for a name: itself, or its image-map substitute. */
  resolveLocalImage,
} from './images.ts';
export type { BuildOptions, BuildResult, ResolvedImage } from './images.ts';

export {
  /** Parses `a=b,c=d` image substitutions (`--image-map`, `PADDOCK_IMAGE_MAP`). */
  parseImageMap,
  /** Rewrites a Dockerfile's FROM lines through a substitution function. */
  rewriteDockerfile,
  /** The environment variable holding an image map. */
  IMAGE_MAP_ENV,
} from './dockerfile.ts';
export type { ImageMap, RewriteResult } from './dockerfile.ts';

export {
  /** Removes paddock's containers of runs that no live process holds (or all, or one run's). */
  collectGarbage,
  reapContainers,
} from './reaper.ts';
export type { GarbageReport, ReapOptions, ReapedContainer } from './reaper.ts';
export { LEASE_DIR_ENV, RunLeases, holdLease, leaseState, readLeases } from './lease.ts';

/** The plug-in that registers this folder with `createPaddock`. */
export { dockerPlugin } from './plugin.ts';
