/**
 * `serveTask`: one live episode of a task, served as an MCP server (stdio or streamable
 * HTTP) to an external agent — Claude Desktop, an IDE, another harness. The episode's
 * sandbox and tool sessions start as for any episode; the client sees the episode's tools
 * (bash, read_file, write_file, edit_file, the task's MCP and other provider tools) and
 * `submit`. When the client calls `submit` or disconnects, the verifier runs and the
 * episode is recorded like any other; `submit`'s result carries the reward.
 *
 * Design: one loop. The episode runs through the harness's own `runEpisode`, driven by an
 * `ExternalAgent` whose `act()` waits for the client's next tool call and returns it as
 * an assistant turn with one tool call; the loop executes it and the result goes back to
 * the client. Limits, turn rewards, verification, scoring and the record are the loop's.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
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
  type CallToolResult,
} from '@modelcontextprotocol/sdk/types.js';
import {
  ERROR_CODES,
  PaddockError,
  describeError,
  runEpisode,
  type Agent,
  type AgentInput,
  type AssistantTurn,
  type EpisodeEvent,
  type EpisodeRewards,
  type EpisodeEventListener,
  type EpisodeRecord,
  type RunStore,
  type SandboxProvider,
  type Task,
  type ToolProvider,
  type ToolResultRecord,
} from '../../harness/index.ts';
import { settle } from './connection.ts';
import { McpToolProvider } from './provider.ts';

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
  /** Starts the task's sandbox; required when the task has an environment. */
  sandboxProvider?: SandboxProvider;
  /** Tool plug-ins. @default [a new McpToolProvider()] (closed when the episode ends) */
  toolProviders?: readonly ToolProvider[];
  /** The task's turn and trajectory rewards, constraints and credit assignment (as for `runEpisode`). */
  rewards?: EpisodeRewards;
  /** Where the finished episode is appended (opened for writing if it is not); its events go there too. */
  runStore?: RunStore;
  /** @default the run store's run id, else `mcp-serve` */
  runId?: string;
  /** @default `<task id>#mcp` */
  episodeId?: string;
  /** @default 0 */
  seed?: number;
  /** Aborting ends the episode unrecorded (`episode` rejects with ABORTED) and stops the server. */
  signal?: AbortSignal;
  onEvent?: EpisodeEventListener;
}

/** A task being served. */
export interface ServedTask {
  /** HTTP: the endpoint clients connect to, e.g. `http://127.0.0.1:38121/mcp`. */
  url?: string;
  /** Resolves with the episode once it ended and was recorded (submit, disconnect, a limit, `close()`). */
  episode: Promise<EpisodeRecord>;
  /** Ends the episode as a disconnect would, waits for its record, and stops the server. Idempotent. */
  close(): Promise<EpisodeRecord>;
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
interface BridgeOutcome {
  /** The tool's result, when the loop ran the call. */
  result?: ToolResultRecord;
  /** The episode, when it ended with (or before) this call. */
  episode?: EpisodeRecord;
}

/** The turn that ends the agent's part when the client went away (recorded with this finish reason). */
const DISCONNECTED: AssistantTurn = { text: null, toolCalls: [], finishReason: 'client-disconnected' };

/**
 * The external-agent bridge: an Agent whose turns are the tool calls of an outside
 * client, one call per turn. `call()` hands a call to the loop and resolves with its
 * result (and the episode's record when the call ended it); `end()` stops the agent as a
 * turn without tool calls would.
 */
export class ExternalAgent implements Agent {
  private pending: Deferred<AssistantTurn> | undefined;
  private turnWanted = deferred<void>();
  private readonly firstInput = deferred<AgentInput>();
  private readonly results = new Map<string, Deferred<ToolResultRecord>>();
  private readonly finished = deferred<EpisodeRecord>();
  private queue: Promise<unknown> = Promise.resolve();
  private ended = false;
  private calls = 0;
  private episodeRecord: EpisodeRecord | undefined;
  private failure: unknown;

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

  /** The episode record, once the episode ended. */
  get episode(): EpisodeRecord | undefined {
    return this.episodeRecord;
  }

  async act(input: AgentInput, options: { signal: AbortSignal }): Promise<AssistantTurn> {
    this.firstInput.resolve(input);
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

  /** Feed the loop's events here (serveTask does). */
  onEvent(event: EpisodeEvent): void {
    if (event.type === 'tool-result') this.results.get(event.result.callId)?.resolve(event.result);
    if (event.type === 'episode-end') this.finish(event.episode);
  }

  /** Records the end of the episode (from `episode-end`, or the loop's rejection). */
  finish(episode: EpisodeRecord | undefined, error?: unknown): void {
    this.ended = true;
    if (episode) {
      this.episodeRecord = episode;
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
   * a limit), or the episode had already ended, also with its record.
   */
  call(name: string, args: unknown): Promise<BridgeOutcome> {
    const run = this.queue.then(() => this.callNow(name, args));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async callNow(name: string, args: unknown): Promise<BridgeOutcome> {
    await this.turnWanted.promise;
    // The loop failed (aborted): its rejection is what the caller of serveTask sees too.
    if (this.failure !== undefined) await this.finished.promise;
    const turn = this.pending;
    if (this.ended || !turn) return { episode: await this.finished.promise };
    this.turnWanted = deferred<void>();
    const id = `mcp_${++this.calls}`;
    const result = deferred<ToolResultRecord>();
    this.results.set(id, result);
    turn.resolve({ text: null, toolCalls: [{ id, name, arguments: JSON.stringify(args ?? {}) }] });
    try {
      // The loop ran the call when its result arrives; then it either asks for the next
      // turn or ends the episode (submit, a limit), and the client hears which.
      const record = await Promise.race([result.promise, this.finished.promise.then(() => undefined)]);
      await Promise.race([this.turnWanted.promise, this.finished.promise]);
      const episode = this.ended ? await this.finished.promise : undefined;
      return { ...(record ? { result: record } : {}), ...(episode ? { episode } : {}) };
    } finally {
      this.results.delete(id);
    }
  }

  /** Ends the agent's part: the loop gets a turn without tool calls (or none is asked any more). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.pending?.resolve(DISCONNECTED);
    this.turnWanted.resolve();
  }
}

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

function toCallResult(outcome: BridgeOutcome): CallToolResult {
  const content: CallToolResult['content'] = [];
  if (outcome.result) {
    content.push({ type: 'text', text: outcome.result.output });
    for (const image of outcome.result.images ?? []) {
      content.push({ type: 'image', data: image.dataBase64, mimeType: image.mimeType });
    }
  }
  if (outcome.episode) {
    content.push({
      type: 'text',
      text: outcome.result
        ? episodeSummary(outcome.episode)
        : `No call was made: ${episodeSummary(outcome.episode)}`,
    });
  }
  return {
    content,
    ...(outcome.episode ? { structuredContent: episodeStructure(outcome.episode) } : {}),
    ...((outcome.result?.isError ?? !outcome.result) ? { isError: true } : {}),
  };
}

/**
 * Serves one episode of `task` to an external MCP client (see the module comment).
 * Resolves once the server listens (HTTP) or is attached to stdio; the sandbox and tool
 * sessions start meanwhile, and `tools/list` answers when they are up.
 * @throws PaddockError CONFIG_INVALID when the task needs a sandbox provider and has none.
 */
export async function serveTask(task: Task, options: ServeTaskOptions): Promise<ServedTask> {
  if (task.environment && !options.sandboxProvider) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `task ${task.id} needs a sandbox, but no sandbox provider was given`,
    );
  }
  const server = new Server(
    { name: 'paddock', version: '0.1.0' },
    {
      capabilities: { tools: {}, prompts: {} },
      instructions: `${task.instruction}\n\nUse the tools to do the task; call submit when you are done. The prompt "task" holds the full first message.`,
    },
  );
  const agent = new ExternalAgent(() => {
    const client = server.getClientVersion()?.name;
    return client ? `mcp:${client}` : 'mcp-client';
  });
  const ownProviders = options.toolProviders ? [] : [new McpToolProvider()];
  const store = options.runStore;
  store?.openForWrite();

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    const input = await agent.ready;
    return {
      tools: input.tools.map((tool) => ({
        name: tool.name,
        description: tool.description,
        inputSchema: { type: 'object' as const, ...tool.inputSchema },
      })),
    };
  });
  // Calls being answered: close() lets them finish, so that submit's answer reaches the client.
  const answering = new Set<Promise<unknown>>();
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    // Unknown tools and bad arguments reach the loop too: they are the agent's mistakes, recorded as such.
    const answer = agent.call(request.params.name, request.params.arguments ?? {}).then(toCallResult);
    answering.add(answer);
    try {
      return await answer;
    } finally {
      answering.delete(answer);
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
  const runId = options.runId ?? store?.manifest.runId ?? 'mcp-serve';
  const episode = (async () => {
    try {
      const record = await runEpisode({
        task,
        agent,
        runId,
        episodeId: options.episodeId ?? `${task.id}#mcp`,
        seed: options.seed ?? 0,
        toolProviders: options.toolProviders ?? ownProviders,
        onEvent,
        ...(options.sandboxProvider ? { sandboxProvider: options.sandboxProvider } : {}),
        ...(options.rewards ? { rewards: options.rewards } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      store?.appendEpisode(record);
      agent.finish(record);
      return record;
    } catch (error) {
      agent.finish(undefined, error);
      throw error;
    } finally {
      await Promise.all(ownProviders.map((provider) => provider.close()));
    }
  })();
  episode.catch(() => undefined); // observed through `served.episode`

  let stop: () => Promise<void>;
  let url: string | undefined;
  if (options.transport === 'stdio') {
    const transport = new StdioServerTransport(
      (options.stdin ?? process.stdin) as NodeJS.ReadStream,
      (options.stdout ?? process.stdout) as NodeJS.WriteStream,
    );
    // The client closing our stdin is its disconnect.
    (options.stdin ?? process.stdin).once('end', () => agent.end());
    await server.connect(transport);
    stop = () => server.close();
  } else {
    const served = await listen(server, agent, options);
    url = served.url;
    stop = () => served.stop();
  }

  let closing: Promise<EpisodeRecord> | undefined;
  const close = (): Promise<EpisodeRecord> => {
    closing ??= (async () => {
      agent.end();
      try {
        return await episode;
      } finally {
        // Let answers in flight be sent (bounded), then stop serving.
        await settle(Promise.allSettled([...answering]), 5_000);
        await new Promise((resolve) => setTimeout(resolve, 50));
        await stop();
      }
    })();
    return closing;
  };
  options.signal?.addEventListener('abort', () => void close().catch(() => undefined), { once: true });
  return { ...(url ? { url } : {}), episode, close };
}

async function listen(
  server: Server,
  agent: ExternalAgent,
  options: ServeTaskOptions,
): Promise<{ url: string; stop(): Promise<void> }> {
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    // DELETE of the session is the client's disconnect.
    onsessionclosed: () => agent.end(),
  });
  await server.connect(transport);
  const http: HttpServer = createServer((request, response) => {
    if (!request.url || new URL(request.url, 'http://localhost').pathname !== '/mcp') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('paddock serves MCP at /mcp\n');
      return;
    }
    transport.handleRequest(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
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
      await server.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
