/**
 * paddock's testing kit (`paddock/testing`), for authors of sandbox kinds and of tests
 * that need a sandbox without Docker:
 *
 * - `describeSandboxConformance(name, makeProvider, options?)` — declares, inside your
 *   vitest file, the checks of what the `SandboxProvider` / `Sandbox` contract promises
 *   (optional capabilities checked only when the sandbox has them). Needs `vitest`.
 * - `MemorySandboxProvider` / `MemorySandbox` — an in-memory sandbox that passes the
 *   suite: files in a map, a small documented command language, real timeouts and aborts.
 */

export {
  /** Declares the conformance checks of a sandbox kind in a vitest file. */
  describeSandboxConformance,
  /** The spec the suite's sandboxes start from unless its options give one. */
  DEFAULT_CONFORMANCE_SPEC,
  /** The shell commands the suite runs (a small POSIX-sh set). */
  SANDBOX_CONFORMANCE_COMMANDS,
} from './sandbox-conformance.ts';
export type { SandboxConformanceOptions } from './sandbox-conformance.ts';

export {
  /** An in-memory sandbox (files in a map, a small command language). */
  MemorySandbox,
  /** Starts in-memory sandboxes and records each start. */
  MemorySandboxProvider,
  /** The commands an in-memory sandbox understands without options. */
  MEMORY_SANDBOX_COMMANDS,
} from './memory-sandbox.ts';
export type { MemoryCommand, MemoryCommandIo, MemorySandboxOptions } from './memory-sandbox.ts';
