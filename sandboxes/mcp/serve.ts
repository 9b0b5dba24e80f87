/**
 * `serveTask`: live episodes of a task, served as an MCP server (stdio or streamable
 * HTTP) to external agents — Claude Desktop, an IDE, another harness. The episode's
 * sandbox and tool sessions start as for any episode; the client sees the episode's tools
 * (bash, read_file, write_file, edit_file, the task's MCP and other provider tools, with
 * their output schemas) and `submit`. When the client calls `submit` or disconnects, the
 * verifier runs and the episode is recorded like any other; `submit`'s result carries the
 * reward.
 *
 * One MCP session is one episode: over stdio the only one; over HTTP each `initialize`
 * opens a session with an episode of its own (its own sandbox and servers), up to
 * `sessions` in all and `maxConcurrentSessions` at once. Clients never share state.
 *
 * Design: one loop. The episode runs through the harness's own `runEpisode`, driven by an
 * `ExternalAgent` whose `act()` waits for the client's next tool call and returns it as
 * an assistant turn with one tool call; the loop executes it and the result goes back to
 * the client. Limits, turn rewards, verification, scoring and the record are the loop's.
 * A client's `notifications/cancelled` aborts the call in flight (its sandbox command is
 * killed, an MCP call is cancelled downstream) and the episode goes on.
 */
import { randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ErrorCode,
  isInitializeRequest,
  type CallToolResult,
} from '@modelcontextprotocol/sdk/types.js';
import {
  ERROR_CODES,
  PaddockError,
  describeError,
  isPaddockError,
  runEpisode,
  type Agent,
  type AgentInput,
  type AgentSession,
  type EpisodeContext as LoopEpisode,
  type AssistantTurn,
  type EpisodeEvent,
  type EpisodeRewards,
  type EpisodeEventListener,
  type EpisodeRecord,
  type ExecOptions,
  type ExecResult,
  type JsonSchema,
  type RunStore,
  type Sandbox,
  type SandboxProvider,
  type Task,
  type Tool,
  type ToolContext,
  type ToolOutput,
  type ToolProvider,
  type ToolResultRecord,
  type ToolSession,
  type ToolSpec,
} from '../../harness/index.ts';
import { settle } from './connection.ts';
import { McpToolProvider } from './provider.ts';
import type { McpToolOutput } from './results.ts';

/** Options of `serveTask`. */
export interface ServeTaskOptions {
  /** How the client connects: the process's stdio, or streamable HTTP at `http://host:port/mcp`. */
  transport: 'stdio' | 'http';
  /** HTTP port; 0 picks a free one (see `ServedTask.url`). @default 0 */
  port?: number;
  /** HTTP address to bind. @default '127.0.0.1' */
  host?: string;
  /** stdio: where requests come from. @default process.stdin */
  stdin?: NodeJS.ReadableStream;
  /** stdio: where answers go. @default process.stdout */
  stdout?: NodeJS.WritableStream;
  /**
   * HTTP: client sessions accepted in all, each an episode of its own; an `initialize`
   * past them is refused with HTTP 503. `Infinity` serves until `close()`. stdio serves one.
   * @default 1
   */
  sessions?: number;
  /**
   * HTTP: sessions whose episodes run at once; an `initialize` past it is refused with HTTP
   * 503 and `Retry-After` until one ends. @default min(sessions, 4)
   */
  maxConcurrentSessions?: number;
  /**
   * HTTP: how long a session stays open after its episode ended, so that the client can
   * still read how it ended, in ms; then its id answers 404. @default 30_000
   */
  endedSessionTtlMs?: number;
  /** Starts the task's sandbox; required when the task has an environment. */
  sandboxProvider?: SandboxProvider;
  /** Tool plug-ins. @default [a new McpToolProvider()] (closed when serving ends) */
  toolProviders?: readonly ToolProvider[];
  /** The task's turn and trajectory rewards, constraints and credit assignment (as for `runEpisode`). */
  rewards?: EpisodeRewards;
  /**
   * Where finished episodes are appended (opened for writing if it is not); their events go
   * there too. When an append fails (STORE_FAILED: a full disk), the client is told, every
   * other episode is aborted (its sandbox closed) and serving ends (see `ServedTask.episodes`).
   */
  runStore?: RunStore;
  /** @default the run store's run id, else `mcp-serve` */
  runId?: string;
  /**
   * The episode's id; with more than one session, session n (from 1) is `<episodeId>-<n>`.
   * @default `<task id>#mcp`
   */
  episodeId?: string;
  /** Seed of the first session's episode; session n gets `seed + n - 1`. @default 0 */
  seed?: number;
  /** Aborting ends the episodes unrecorded (they reject with ABORTED) and stops the server. */
  signal?: AbortSignal;
  onEvent?: EpisodeEventListener;
}

/** Tasks being served. */
export interface ServedTask {
  /** HTTP: the endpoint clients connect to, e.g. `http://127.0.0.1:38121/mcp`. */
  url?: string;
  /**
   * The first session's episode, once it ended and was recorded (submit, disconnect, a
   * limit, `close()`). Rejects with STORE_FAILED when it could not be recorded, ABORTED
   * when `signal` aborted or serving ended before any session opened.
   */
  episode: Promise<EpisodeRecord>;
  /**
   * Every session's episode, in the order they ended, once `sessions` sessions were opened
   * and their episodes ended (or `close()` ended them). Rejects with STORE_FAILED (said for
   * a person: the records written are intact) when one could not be recorded, ABORTED when
   * `signal` aborted.
   */
  episodes: Promise<EpisodeRecord[]>;
  /**
   * Ends the episodes still running as a disconnect would, waits for their records, and
   * stops the server. Resolves with the episodes recorded; idempotent; never rejects.
   */
  close(): Promise<EpisodeRecord[]>;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** What one external call gave back. */
export interface BridgeOutcome {
  /** The tool's result, when the loop ran the call. */
  result?: ToolResultRecord;
  /** The result's structured content, when the tool gave some (MCP tools). */
  structuredContent?: Record<string, unknown>;
  /** The episode, when it ended with (or before) this call. */
  episode?: EpisodeRecord;
  /** Why the episode's record could not be written (STORE_FAILED), when it could not. */
  recordError?: unknown;
  /** True when the caller's signal aborted before the call reached the loop: nothing ran. */
  cancelled?: boolean;
}

/** The turn that ends the agent's part when the client went away (recorded with this finish reason). */
const DISCONNECTED: AssistantTurn = { text: null, toolCalls: [], finishReason: 'client-disconnected' };

/**
 * The external-agent bridge: an Agent whose turns are the tool calls of an outside
 * client, one call per turn. `call()` hands a call to the loop and resolves with its
 * result (and the episode's record when the call ended it); `end()` stops the agent as a
 * turn without tool calls would. Whoever runs the loop calls `finish()` once the episode
 * ended and was recorded (or failed): calls waiting for the end are answered then.
 */
export class ExternalAgent implements Agent {
  private pending: Deferred<AssistantTurn> | undefined;
  private turnWanted = deferred<void>();
  private readonly firstInput = deferred<AgentInput>();
  private readonly results = new Map<string, Deferred<ToolResultRecord>>();
  private readonly finished = deferred<EpisodeRecord>();
  private queue: Promise<unknown> = Promise.resolve();
  private ended = false;
  private done = false;
  private calls = 0;
  private episodeRecord: EpisodeRecord | undefined;
  private failure: unknown;
  private recordFailure: unknown;
  private latest: AgentInput | undefined;
  private toolsKey: string | undefined;
  private callController: AbortController | undefined;
  private callStructured: Record<string, unknown> | undefined;
  /** Incremented each time the tools the loop offers change between turns. */
  toolsVersion = 0;

  /** @param nameOf the agent's name for the record (read when the episode ends) */
  constructor(private readonly nameOf: () => string = () => 'mcp-client') {}

  get name(): string {
    return this.nameOf();
  }

  /**
   * The loop's first request: the conversation so far and the tools. Resolves once set-up
   * is done; rejects when the episode ended before (its sandbox or a server failed).
   */
  get ready(): Promise<AgentInput> {
    return this.firstInput.promise;
  }

  /** The tools of the loop's latest request (they change when a server's tool list changed). */
  get tools(): readonly ToolSpec[] {
    return this.latest?.tools ?? [];
  }

  /** The episode record, once the episode ended. */
  get episode(): EpisodeRecord | undefined {
    return this.episodeRecord;
  }

  /**
   * The signal of the call being run, aborted when its client cancels it; undefined
   * between calls. Tools and the sandbox of a served episode join it to their own.
   */
  get callSignal(): AbortSignal | undefined {
    return this.callController?.signal;
  }

  /** Keeps the structured content of the call being run (see `callSignal`), for its answer. */
  noteStructured(structuredContent: Record<string, unknown>): void {
    if (this.callController) this.callStructured = structuredContent;
  }

  /** Opens the bridge for its episode (one agent serves one episode). */
  open(_episode: LoopEpisode): AgentSession {
    return { act: (input, options) => this.play(input, options) };
  }

  private async play(input: AgentInput, options: { signal: AbortSignal }): Promise<AssistantTurn> {
    this.firstInput.resolve(input);
    this.latest = input;
    const key = JSON.stringify(input.tools);
    if (this.toolsKey !== undefined && key !== this.toolsKey) this.toolsVersion++;
    this.toolsKey = key;
    if (this.ended) return DISCONNECTED;
    const turn = deferred<AssistantTurn>();
    this.pending = turn;
    const onAbort = () => turn.reject(options.signal.reason);
    options.signal.addEventListener('abort', onAbort, { once: true });
    this.turnWanted.resolve();
    try {
      return await turn.promise;
    } finally {
      options.signal.removeEventListener('abort', onAbort);
      if (this.pending === turn) this.pending = undefined;
    }
  }

  /** Feed the loop's events here (serveTask does): tool results answer the calls. */
  onEvent(event: EpisodeEvent): void {
    if (event.type === 'tool-result') this.results.get(event.result.callId)?.resolve(event.result);
  }

  /**
   * Records the end of the episode: its record (after it was stored), or the loop's
   * failure. With both, the episode ended but its record could not be written (`error`
   * says why); the calls waiting are answered with the record and the failure.
   * Idempotent: the first call wins.
   */
  finish(episode: EpisodeRecord | undefined, error?: unknown): void {
    if (this.done) return;
    this.done = true;
    this.ended = true;
    if (episode) {
      this.episodeRecord = episode;
      if (error !== undefined) this.recordFailure = error;
      this.finished.resolve(episode);
    } else {
      this.failure = error;
      this.finished.reject(error);
      this.finished.promise.catch(() => undefined);
    }
    // An episode that ended before its first turn (its set-up failed) has no tools to list.
    this.firstInput.reject(
      new Error(
        episode
          ? `the episode ended before its first turn: ${episode.status}${episode.error ? `: ${episode.error.message}` : ''}`
          : `the episode failed: ${describeError(error)}`,
      ),
    );
    this.firstInput.promise.catch(() => undefined);
    this.turnWanted.resolve();
  }

  /**
   * Runs one tool call as the next turn. Calls are queued: each waits for the loop to ask
   * for a turn. Resolves with the call's result; when the call ended the episode (submit,
   * a limit), or the episode had already ended, also with its record. When `signal`
   * aborts before the call reached the loop, nothing runs (`cancelled`); after, the call
   * in flight is aborted (see `callSignal`) and its result says so.
   */
  call(name: string, args: unknown, options: { signal?: AbortSignal } = {}): Promise<BridgeOutcome> {
    const run = this.queue.then(() => this.callNow(name, args, options.signal));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async callNow(
    name: string,
    args: unknown,
    signal: AbortSignal | undefined,
  ): Promise<BridgeOutcome> {
    await this.turnWanted.promise;
    // The loop failed (aborted): its rejection is what the caller of serveTask sees too.
    if (this.failure !== undefined) await this.finished.promise;
    const turn = this.pending;
    if (this.ended || !turn) return this.ending({});
    if (signal?.aborted) return { cancelled: true };
    this.turnWanted = deferred<void>();
    const id = `mcp_${++this.calls}`;
    const result = deferred<ToolResultRecord>();
    this.results.set(id, result);
    const controller = new AbortController();
    this.callController = controller;
    this.callStructured = undefined;
    const onCancel = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onCancel, { once: true });
    turn.resolve({ text: null, toolCalls: [{ id, name, arguments: JSON.stringify(args ?? {}) }] });
    try {
      // The loop ran the call when its result arrives; then it either asks for the next
      // turn or ends the episode (submit, a limit), and the client hears which.
      const record = await Promise.race([result.promise, this.finished.promise.then(() => undefined)]);
      const structuredContent = this.callStructured;
      if (this.callController === controller) this.callController = undefined;
      await Promise.race([this.turnWanted.promise, this.finished.promise]);
      const outcome: BridgeOutcome = {
        ...(record ? { result: record } : {}),
        ...(record && structuredContent ? { structuredContent } : {}),
      };
      return this.ended ? await this.ending(outcome) : outcome;
    } finally {
      signal?.removeEventListener('abort', onCancel);
      if (this.callController === controller) {
        this.callController = undefined;
        this.callStructured = undefined;
      }
      this.results.delete(id);
    }
  }

  /** `outcome` with the episode's end (waiting for it). */
  private async ending(outcome: BridgeOutcome): Promise<BridgeOutcome> {
    const episode = await this.finished.promise;
    return {
      ...outcome,
      episode,
      ...(this.recordFailure !== undefined ? { recordError: this.recordFailure } : {}),
    };
  }

  /** Ends the agent's part: the loop gets a turn without tool calls (or none is asked any more). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.pending?.resolve(DISCONNECTED);
    this.turnWanted.resolve();
  }
}

/** The `_meta` key under which a result that ended the episode says how (spec: `_meta` key names). */
export const EPISODE_META_KEY = 'paddock/episode';

/** The text that tells the client how the episode ended. */
function episodeSummary(episode: EpisodeRecord): string {
  const components = Object.entries(episode.reward.components)
    .map(([name, component]) => `${name}=${component.value}`)
    .join(', ');
  const how =
    episode.status === 'limit'
      ? `ended by its ${episode.limit ?? ''} limit`
      : episode.status === 'completed'
        ? 'ended'
        : `failed (${episode.status}: ${episode.error?.message ?? 'unknown'})`;
  return `The episode ${how}. Reward: ${episode.reward.total}${components ? ` (${components})` : ''}.`;
}

function episodeStructure(episode: EpisodeRecord): Record<string, unknown> {
  return {
    reward: episode.reward.total,
    components: Object.fromEntries(
      Object.entries(episode.reward.components).map(([name, c]) => [name, c.value]),
    ),
    status: episode.status,
    ...(episode.limit ? { limit: episode.limit } : {}),
    episodeId: episode.episodeId,
  };
}

/**
 * The MCP result of one outside call. The tool's own structured content goes through as
 * it is; when the call ended the episode, its summary is a text item and `_meta`
 * (`paddock/episode`), and also the structured content of tools that declare no output
 * schema (`submit`), which clients read the reward from.
 */
function toCallResult(outcome: BridgeOutcome, outputSchema: JsonSchema | undefined): CallToolResult {
  const content: CallToolResult['content'] = [];
  if (outcome.result) {
    content.push({ type: 'text', text: outcome.result.output });
    for (const image of outcome.result.images ?? []) {
      content.push({ type: 'image', data: image.dataBase64, mimeType: image.mimeType });
    }
  }
  const episode = outcome.episode ? episodeStructure(outcome.episode) : undefined;
  if (outcome.episode) {
    content.push({
      type: 'text',
      text: outcome.result
        ? episodeSummary(outcome.episode)
        : `No call was made: ${episodeSummary(outcome.episode)}`,
    });
  }
  if (outcome.recordError !== undefined) {
    content.push({
      type: 'text',
      text: `The episode could not be recorded: ${describeError(outcome.recordError)}. paddock stopped serving.`,
    });
  }
  const structured = outcome.structuredContent ?? (outputSchema ? undefined : episode);
  const failed = (outcome.result?.isError ?? !outcome.result) || outcome.recordError !== undefined;
  return {
    content,
    ...(structured ? { structuredContent: structured } : {}),
    ...(failed ? { isError: true } : {}),
    ...(episode ? { _meta: { [EPISODE_META_KEY]: episode } } : {}),
  };
}

/** `target` with some members replaced; the others are the target's own (methods bound to it). */
function overriding<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(object, key) {
      if (Object.prototype.hasOwnProperty.call(overrides, key)) return Reflect.get(overrides, key) as unknown;
      const value = Reflect.get(object, key, object) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(object) : value;
    },
  });
}

/** Joins `signals` into one controller's signal; `release()` removes the listeners. */
function joinSignals(signals: readonly (AbortSignal | undefined)[]): {
  signal: AbortSignal;
  release(): void;
} {
  const controller = new AbortController();
  const listeners: [AbortSignal, () => void][] = [];
  for (const signal of signals) {
    if (!signal) continue;
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    const listener = () => controller.abort(signal.reason);
    signal.addEventListener('abort', listener, { once: true });
    listeners.push([signal, listener]);
  }
  return {
    signal: controller.signal,
    release: () => {
      for (const [signal, listener] of listeners) signal.removeEventListener('abort', listener);
    },
  };
}

const CANCELLED_TEXT = 'The call was cancelled by the client (notifications/cancelled).';

/**
 * The sandbox of a served episode: a command run during a call ends when the client
 * cancels the call (the sandbox kills it), answered as a command killed by a signal, so
 * that the loop goes on (an abort would end the episode).
 */
function cancellableSandbox(sandbox: Sandbox, agent: ExternalAgent): Sandbox {
  return overriding<Sandbox>(sandbox, {
    async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
      const cancel = agent.callSignal;
      if (!cancel) return sandbox.exec(command, options);
      const started = performance.now();
      const joined = joinSignals([options.signal, cancel]);
      try {
        return await sandbox.exec(command, { ...options, signal: joined.signal });
      } catch (error) {
        if (cancel.aborted && !options.signal?.aborted) {
          return {
            exitCode: 130,
            stdout: '',
            stderr: `paddock: ${CANCELLED_TEXT} The command was killed.`,
            timedOut: false,
            truncated: false,
            durationMs: performance.now() - started,
          };
        }
        throw error;
      } finally {
        joined.release();
      }
    },
  });
}

/** A tool of a served episode as the client gets it (with its output schema). */
type ServedTool = Tool & { readonly outputSchema?: JsonSchema };

/**
 * A provider tool of a served episode: cancellable by the client (the call in flight is
 * aborted and answered as cancelled; the episode goes on), its structured content kept
 * for the client's answer.
 */
function servedTool(tool: Tool, agent: ExternalAgent): ServedTool {
  const outputSchema = (tool as { outputSchema?: unknown }).outputSchema;
  return {
    name: tool.name,
    description: tool.description,
    inputSchema: tool.inputSchema,
    ...(isObjectSchema(outputSchema) ? { outputSchema } : {}),
    async execute(args: unknown, context: ToolContext): Promise<ToolOutput> {
      const cancel = agent.callSignal;
      const joined = joinSignals([context.signal, cancel]);
      const cancelled = () => cancel?.aborted === true && !context.signal.aborted;
      try {
        const output: McpToolOutput = await tool.execute(args, { ...context, signal: joined.signal });
        if (cancelled()) return { text: CANCELLED_TEXT, isError: true };
        if (output.structuredContent) agent.noteStructured(output.structuredContent);
        return output;
      } catch (error) {
        if (cancelled()) return { text: CANCELLED_TEXT, isError: true };
        throw error;
      } finally {
        joined.release();
      }
    },
  };
}

/** MCP requires an output schema of type `object` (types.ts `ToolSchema.outputSchema`). */
function isObjectSchema(schema: unknown): schema is JsonSchema {
  return (
    typeof schema === 'object' &&
    schema !== null &&
    !Array.isArray(schema) &&
    (schema as { type?: unknown }).type === 'object'
  );
}

/** The tool sessions of one served episode, their tools wrapped by `servedTool`. */
class ServedSessions {
  private readonly sessions: ToolSession[] = [];
  private readonly wrapped = new WeakMap<Tool, ServedTool>();

  constructor(private readonly agent: ExternalAgent) {}

  provider(provider: ToolProvider): ToolProvider {
    return overriding<ToolProvider>(provider, {
      open: async (task, context) => {
        const session = await provider.open(task, context);
        if (!session) return undefined;
        const wrap = (tool: Tool) => this.wrap(tool);
        const served = overriding<ToolSession>(session, {
          // Read through each time: a session's tools change (MCP tools/list_changed).
          get tools() {
            return session.tools.map(wrap);
          },
        });
        this.sessions.push(served);
        return served;
      },
    });
  }

  private wrap(tool: Tool): ServedTool {
    let served = this.wrapped.get(tool);
    if (!served) {
      served = servedTool(tool, this.agent);
      this.wrapped.set(tool, served);
    }
    return served;
  }

  /** The output schema of the provider tool named `name`, when it has one. */
  outputSchemaOf(name: string): JsonSchema | undefined {
    for (const session of this.sessions) {
      const tool: ServedTool | undefined = session.tools.find((candidate) => candidate.name === name);
      if (tool) return tool.outputSchema;
    }
    return undefined;
  }
}

/** One session's episode: its MCP server, its agent, its record. */
interface ServedEpisode {
  readonly server: Server;
  readonly agent: ExternalAgent;
  /** Resolves with the record once stored; rejects as `runEpisode` does, or with STORE_FAILED. */
  readonly episode: Promise<EpisodeRecord>;
  /** Calls being answered: close() lets them finish, so that submit's answer reaches the client. */
  readonly answering: Set<Promise<unknown>>;
  /** Cancels the tools/call request `id` in flight, as `notifications/cancelled` would. */
  cancel(id: string | number): void;
}

interface EpisodeContext {
  episodeId: string;
  seed: number;
  runId: string;
  toolProviders: readonly ToolProvider[];
  signal: AbortSignal;
  /** Called when the record could not be stored, before the client is told. */
  onStoreFailed(error: unknown): void;
}

/** Starts one episode of `task` and the MCP server that drives it (not yet connected). */
function openEpisode(task: Task, options: ServeTaskOptions, context: EpisodeContext): ServedEpisode {
  const server = new Server(
    { name: 'paddock', version: '0.1.0' },
    {
      capabilities: { tools: { listChanged: true }, prompts: {} },
      instructions: `${task.instruction}\n\nUse the tools to do the task; call submit when you are done. The prompt "task" holds the full first message.`,
    },
  );
  const agent = new ExternalAgent(() => {
    const client = server.getClientVersion()?.name;
    return client ? `mcp:${client}` : 'mcp-client';
  });
  const sessions = new ServedSessions(agent);
  const store = options.runStore;

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    await agent.ready;
    return {
      tools: agent.tools.map((tool) => {
        const outputSchema = sessions.outputSchemaOf(tool.name);
        return {
          name: tool.name,
          description: tool.description,
          inputSchema: { type: 'object' as const, ...tool.inputSchema },
          ...(outputSchema ? { outputSchema: outputSchema as { type: 'object' } } : {}),
        };
      }),
    };
  });
  const answering = new Set<Promise<unknown>>();
  const inFlight = new Map<string | number, AbortController>();
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const name = request.params.name;
    const toolsVersion = agent.toolsVersion;
    // Cancelled by the client's notifications/cancelled (the SDK aborts extra.signal), or by
    // the HTTP front when the request's stream closes before its answer (`cancel`).
    const cancel = new AbortController();
    inFlight.set(extra.requestId, cancel);
    const joined = joinSignals([extra.signal, cancel.signal]);
    // Unknown tools and bad arguments reach the loop too: they are the agent's mistakes, recorded as such.
    const answer = agent
      .call(name, request.params.arguments ?? {}, { signal: joined.signal })
      .then(async (outcome) => {
        // The call changed the tools (a server's tools/list_changed): the client hears it
        // before the answer, on the same stream (spec: server/tools "List Changed Notification").
        if (agent.toolsVersion !== toolsVersion) {
          await extra.sendNotification({ method: 'notifications/tools/list_changed' }).catch(() => undefined);
        }
        // A cancelled call is not answered (the SDK drops the answer of an aborted request).
        return toCallResult(outcome, outcome.cancelled ? undefined : sessions.outputSchemaOf(name));
      });
    answering.add(answer);
    try {
      return await answer;
    } finally {
      answering.delete(answer);
      joined.release();
      if (inFlight.get(extra.requestId) === cancel) inFlight.delete(extra.requestId);
    }
  });
  server.setRequestHandler(ListPromptsRequestSchema, async () => ({
    prompts: [{ name: 'task', description: `The task ${task.id}: its instruction and first observations.` }],
  }));
  server.setRequestHandler(GetPromptRequestSchema, async (request) => {
    if (request.params.name !== 'task')
      throw new McpError(ErrorCode.InvalidParams, `no prompt named ${request.params.name}`);
    const input = await agent.ready;
    const text = input.messages
      .filter((message) => message.role === 'system' || message.role === 'user')
      .map((message) => message.content)
      .join('\n\n');
    return { description: `Task ${task.id}`, messages: [{ role: 'user', content: { type: 'text', text } }] };
  });
  server.onclose = () => agent.end();

  const onEvent: EpisodeEventListener = (event) => {
    agent.onEvent(event);
    store?.appendEvent(event);
    options.onEvent?.(event);
  };
  const sandboxProvider = options.sandboxProvider
    ? overriding<SandboxProvider>(options.sandboxProvider, {
        start: async (spec, startOptions) =>
          cancellableSandbox(await options.sandboxProvider!.start(spec, startOptions), agent),
      })
    : undefined;
  const episode = (async () => {
    let record: EpisodeRecord;
    try {
      record = await runEpisode({
        task,
        agent,
        runId: context.runId,
        episodeId: context.episodeId,
        seed: context.seed,
        toolProviders: context.toolProviders.map((provider) => sessions.provider(provider)),
        onEvent,
        signal: context.signal,
        ...(sandboxProvider ? { sandboxProvider } : {}),
        ...(options.rewards ? { rewards: options.rewards } : {}),
      });
    } catch (error) {
      agent.finish(undefined, error);
      throw error;
    }
    try {
      store?.appendEpisode(record);
    } catch (error) {
      // The episode's sandbox is closed already (runEpisode closes it before returning);
      // the others are aborted by onStoreFailed before the client hears of it.
      context.onStoreFailed(error);
      agent.finish(record, error);
      throw error;
    }
    agent.finish(record);
    return record;
  })();
  episode.catch(() => undefined); // observed through `served.episode(s)`
  const cancelRequest = (id: string | number) =>
    inFlight.get(id)?.abort(new Error('the request was cancelled'));
  return { server, agent, episode, answering, cancel: cancelRequest };
}

/** Largest request body read, in bytes: the SDK transport's own bound (server/requestBody.ts). */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** Default bound on sessions running at once over HTTP. */
const DEFAULT_MAX_CONCURRENT_SESSIONS = 4;

/**
 * Serves episodes of `task` to external MCP clients (see the module comment). Resolves
 * once the server listens (HTTP) or is attached to stdio; over stdio the sandbox and tool
 * sessions start at once, over HTTP when a client's `initialize` opens a session, and
 * `tools/list` answers when they are up.
 * @throws PaddockError CONFIG_INVALID when the task needs a sandbox provider and has none,
 *   or `sessions` / `maxConcurrentSessions` are not positive integers.
 */
export async function serveTask(task: Task, options: ServeTaskOptions): Promise<ServedTask> {
  if (task.environment && !options.sandboxProvider) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `task ${task.id} needs a sandbox, but no sandbox provider was given`,
    );
  }
  const sessions = options.transport === 'stdio' ? 1 : (options.sessions ?? 1);
  const maxConcurrent = options.maxConcurrentSessions ?? Math.min(sessions, DEFAULT_MAX_CONCURRENT_SESSIONS);
  for (const [name, value] of [
    ['sessions', sessions],
    ['maxConcurrentSessions', maxConcurrent],
  ] as const) {
    if (!(value === Infinity || (Number.isInteger(value) && value >= 1)))
      throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${name} must be a positive integer, not ${value}`);
  }
  const ownProviders = options.toolProviders ? [] : [new McpToolProvider()];
  const toolProviders = options.toolProviders ?? ownProviders;
  const store = options.runStore;
  store?.openForWrite();
  const runId = options.runId ?? store?.manifest.runId ?? 'mcp-serve';
  const baseId = options.episodeId ?? `${task.id}#mcp`;

  // One root per serve: aborting it (the caller's signal, a store failure) aborts every episode.
  const root = new AbortController();
  const onAbort = () => root.abort(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });

  const live = new Set<ServedEpisode>();
  const all = new Set<ServedEpisode>();
  const records: EpisodeRecord[] = [];
  const first = deferred<EpisodeRecord>();
  const everyEpisode = deferred<EpisodeRecord[]>();
  first.promise.catch(() => undefined);
  everyEpisode.promise.catch(() => undefined);
  let opened = 0;
  let stopping = false;
  let failure: unknown;

  const fail = (error: unknown) => {
    failure ??= error;
    everyEpisode.reject(failure);
    first.reject(failure);
  };
  const settleIfDone = () => {
    if (failure !== undefined) return;
    if (live.size === 0 && (opened >= sessions || stopping)) {
      if (opened === 0)
        fail(new PaddockError(ERROR_CODES.ABORTED, 'serving ended before any client connected'));
      else everyEpisode.resolve(records);
    }
  };
  const open = (): ServedEpisode => {
    const n = ++opened;
    const served = openEpisode(task, options, {
      episodeId: sessions === 1 ? baseId : `${baseId}-${n}`,
      seed: (options.seed ?? 0) + n - 1,
      runId,
      toolProviders,
      signal: root.signal,
      onStoreFailed: (error) => {
        const explained = isPaddockError(error, ERROR_CODES.STORE_FAILED)
          ? new PaddockError(
              ERROR_CODES.STORE_FAILED,
              `${error.message}. paddock stopped serving; the other episodes were ended unrecorded and their sandboxes closed.`,
              { cause: error, details: error.details },
            )
          : error;
        fail(explained);
        root.abort(explained);
      },
    });
    live.add(served);
    all.add(served);
    served.episode.then(
      (record) => {
        records.push(record);
        if (n === 1) first.resolve(record);
      },
      (error: unknown) => {
        if (n === 1) first.reject(error);
        if (failure === undefined) fail(error);
      },
    );
    void served.episode
      .catch(() => undefined)
      .finally(() => {
        live.delete(served);
        settleIfDone();
      });
    return served;
  };

  let stop: () => Promise<void>;
  let url: string | undefined;
  if (options.transport === 'stdio') {
    const served = open();
    const transport = new StdioServerTransport(
      (options.stdin ?? process.stdin) as NodeJS.ReadStream,
      (options.stdout ?? process.stdout) as NodeJS.WriteStream,
    );
    // The client closing our stdin is its disconnect.
    (options.stdin ?? process.stdin).once('end', () => served.agent.end());
    await served.server.connect(transport);
    stop = () => served.server.close();
  } else {
    const http = await listen(options, {
      canOpen: () => {
        if (stopping || failure !== undefined || opened >= sessions)
          return {
            status: 503,
            message: `this server accepts no more sessions (${opened} of ${sessions} opened)`,
          };
        if (live.size >= maxConcurrent)
          return {
            status: 503,
            message: `${live.size} sessions are running, the most this server runs at once; retry later`,
            retryAfterSec: 5,
          };
        return undefined;
      },
      open,
    });
    url = http.url;
    stop = () => http.stop();
  }

  let closing: Promise<EpisodeRecord[]> | undefined;
  const close = (): Promise<EpisodeRecord[]> => {
    closing ??= (async () => {
      stopping = true;
      for (const served of all) served.agent.end();
      settleIfDone();
      await Promise.allSettled([...all].map((served) => served.episode));
      // Let answers in flight be sent (bounded), then stop serving.
      await settle(Promise.allSettled([...all].flatMap((served) => [...served.answering])), 5_000);
      await new Promise((resolve) => setTimeout(resolve, 50));
      // Stopping is best effort (a transport already closed by its client may refuse): close() never rejects.
      await stop().catch(() => undefined);
      await Promise.all(ownProviders.map((provider) => provider.close()));
      options.signal?.removeEventListener('abort', onAbort);
      return [...records];
    })();
    return closing;
  };
  root.signal.addEventListener('abort', () => void close(), { once: true });
  return { ...(url ? { url } : {}), episode: first.promise, episodes: everyEpisode.promise, close };
}

/** What the HTTP front needs from serveTask. */
interface SessionGate {
  /** Why a new session is refused now (HTTP status and message), or undefined to accept it. */
  canOpen(): { status: number; message: string; retryAfterSec?: number } | undefined;
  /** Opens the episode of a new session. */
  open(): ServedEpisode;
}

/**
 * The streamable-HTTP front: one SDK transport per session, created on an `initialize`
 * without a session id (spec: basic/transports "Session Management"); requests carrying
 * an unknown or expired session id are answered 404, as the spec asks.
 */
async function listen(
  options: ServeTaskOptions,
  gate: SessionGate,
): Promise<{ url: string; stop(): Promise<void> }> {
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; served: ServedEpisode }>();
  const transports = new Set<StreamableHTTPServerTransport>();
  const timers = new Set<NodeJS.Timeout>();
  const ttlMs = options.endedSessionTtlMs ?? 30_000;

  const openSession = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const body = await readJson(request, MAX_REQUEST_BYTES);
    const messages: unknown[] = Array.isArray(body) ? body : [body];
    if (request.method !== 'POST' || !messages.some((message) => isInitializeRequest(message))) {
      jsonError(response, 400, -32000, 'Bad Request: no valid session id, and not an initialize request');
      return;
    }
    const refused = gate.canOpen();
    if (refused) {
      jsonError(response, refused.status, -32000, refused.message, refused.retryAfterSec);
      return;
    }
    const served = gate.open();
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, served });
      },
      // DELETE of the session is the client's disconnect.
      onsessionclosed: () => served.agent.end(),
    });
    transports.add(transport);
    transport.onclose = () => {
      transports.delete(transport);
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    // Once the episode ended, the session lingers so that the client can read how, then closes.
    void served.episode
      .catch(() => undefined)
      .finally(() => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          void transport.close().catch(() => undefined);
        }, ttlMs);
        timer.unref();
        timers.add(timer);
      });
    await served.server.connect(transport);
    await transport.handleRequest(request, response, body);
    // An initialize the transport refused opened no session: its episode has no client.
    if (transport.sessionId === undefined) served.agent.end();
  };

  const http: HttpServer = createServer((request, response) => {
    if (!request.url || new URL(request.url, 'http://localhost').pathname !== '/mcp') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('paddock serves MCP at /mcp\n');
      return;
    }
    const id = request.headers['mcp-session-id'];
    const handling =
      typeof id === 'string'
        ? (async () => {
            const session = sessions.get(id);
            if (!session) return jsonError(response, 404, -32001, 'Session not found');
            if (request.method !== 'POST') return session.transport.handleRequest(request, response);
            const body = await readJson(request, MAX_REQUEST_BYTES);
            // A client that closes a request's stream before the answer cancels the request
            // (the 2026 spec's streamable-HTTP cancellation; clients of 2025-11-25 send
            // notifications/cancelled instead, which the SDK handles).
            const calls = (Array.isArray(body) ? body : [body]).flatMap((message) =>
              isCallRequest(message) ? [message.id] : [],
            );
            if (calls.length > 0) {
              response.once('close', () => {
                if (!response.writableFinished) for (const call of calls) session.served.cancel(call);
              });
            }
            return session.transport.handleRequest(request, response, body);
          })()
        : openSession(request, response);
    handling.catch((error: unknown) => {
      if (response.headersSent) response.end();
      else if (error instanceof BodyTooLarge) jsonError(response, 413, -32000, error.message);
      else jsonError(response, 400, -32700, `Parse error: ${describeError(error)}`);
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, host, () => resolve());
  });
  const address = http.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`,
    stop: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.all([...transports].map((transport) => transport.close().catch(() => undefined)));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** A JSON-RPC error answer without an id, as the SDK's transport writes them. */
function jsonError(
  response: ServerResponse,
  status: number,
  code: number,
  message: string,
  retryAfterSec?: number,
): void {
  response
    .writeHead(status, {
      'content-type': 'application/json',
      ...(retryAfterSec === undefined ? {} : { 'retry-after': String(retryAfterSec) }),
    })
    .end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

/** A request body past the bound (answered 413, as the SDK's transport does). */
class BodyTooLarge extends Error {}

/** A JSON-RPC tools/call request, read for its id only. */
function isCallRequest(message: unknown): message is { id: string | number } {
  if (typeof message !== 'object' || message === null) return false;
  const { method, id } = message as { method?: unknown; id?: unknown };
  return method === 'tools/call' && (typeof id === 'string' || typeof id === 'number');
}

/** Reads a request body of at most `maxBytes` as JSON; rejects when larger (BodyTooLarge) or not JSON. */
async function readJson(request: IncomingMessage, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes)
      throw new BodyTooLarge(`Payload Too Large: Request body must not exceed ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  // The shape is checked by isInitializeRequest (the SDK's schema) before use.
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
}
