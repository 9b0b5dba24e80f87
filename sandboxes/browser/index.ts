/**
 * The browser environment: web tasks in a real Chromium driven through Playwright.
 * See README.md in this folder for the task-file section, the tools and the guarantees.
 */

/** The plug-in to pass as a tool provider, and the turn reward that scores the page after each turn. */
export {
  BrowserToolProvider,
  browserTurnReward,
  pageTurnReward,
  type BrowserToolProviderOptions,
  type BrowserTurnRewardOptions,
} from './provider.ts';
/** The zod schema of a task's `browser:` section (register with the task loader), its types, and the resolved form. */
export {
  browserTaskExtension,
  resolveBrowserConfig,
  type BrowserTaskConfig,
  type BrowserTaskExtension,
  type BrowserTaskExtensionInput,
  BrowserSandboxSchema,
  type PageSource,
  type ScorerSource,
} from './schema.ts';
/** The shared browser: launch flags, context options, and the pool (for embedding and benchmarks). */
export {
  BrowserPool,
  CHROMIUM_ARGS,
  CONTEXT_OPTIONS,
  DEFAULT_CHROMIUM_PATH,
  type BrowserPoolOptions,
  type Lease,
} from './browser-pool.ts';
/** One episode's session (what `open` returns). */
export { BrowserSession } from './session.ts';
/** The names of the browser tools. */
export { BROWSER_TOOL_NAMES } from './tools.ts';
/** Observation helpers: snapshot trimming and formatting. */
export {
  describeRef,
  formatObservation,
  parseSnapshot,
  summarizeActionError,
  trimSnapshot,
  type ObservationParts,
  type TrimmedSnapshot,
} from './observation.ts';
/** Which URLs a page may reach. */
export { OriginPolicy, originOf, resolveGotoTarget } from './origins.ts';
/** Scorers: how a scorer's source becomes a program, what counts as a score, and the note of one that threw. */
export {
  NOTE_MAX_CHARS,
  THREW_NOTE_MAX_CHARS,
  scorerProgram,
  scorerScore,
  scoreValue,
  threwNote,
  type ScorerOutcome,
  type ScorerScore,
} from './scorer.ts';
/** Serving a task's pages. */
export { serveStaticSite, startApp, type RunningSite } from './site-server.ts';
/** Serving a task's pages from inside its Docker sandbox, through a relay on the host. */
export {
  RELAY_MAX_BUFFERED_BYTES,
  RELAY_SPARES,
  openSandboxPort,
  relayScript,
  startSandboxApp,
  type SandboxPortRelay,
  type SpawningSandbox,
} from './sandbox-port.ts';

/** The plug-in that registers this folder with `createPaddock`. */
export { browserPlugin } from './plugin.ts';
