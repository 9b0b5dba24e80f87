/** Shared by the browser integration tests: tasks built in code, a fixture server, the browser's pid. */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Task, ToolContext, ToolOutput } from '../../../harness/index.ts';
import type { BrowserSession, BrowserTaskExtensionInput } from '../../../sandboxes/browser/index.ts';

export const FIXTURES = path.join(import.meta.dirname, 'fixtures');

/** A web task without a sandbox, scored by its page, like the tasks of tasks/web. */
export function webTask(id: string, browser: BrowserTaskExtensionInput, overrides: Partial<Task> = {}): Task {
  return {
    id,
    dir: FIXTURES,
    format: 'paddock',
    instruction: `Fixture task ${id}.`,
    tools: ['submit'],
    limits: { maxTurns: 20, timeoutMs: 120_000, commandTimeoutMs: 10_000 },
    metadata: {},
    extensions: { browser },
    ...overrides,
  };
}

/** Calls one of a session's tools by name. */
export async function call(
  session: BrowserSession,
  name: string,
  args: Record<string, unknown>,
  signal: AbortSignal = new AbortController().signal,
): Promise<ToolOutput> {
  const tool = session.tools.find((candidate) => candidate.name === name);
  if (!tool) throw new Error(`no tool ${name}`);
  const context: ToolContext = { signal, episodeId: session.episodeId, turnIndex: 0 };
  return tool.execute(args, context);
}

/** The ref a snapshot gives the first line that contains `text`. */
export function refOf(observation: string, text: string): string {
  const line = observation
    .split('\n')
    .find((candidate) => candidate.includes(text) && candidate.includes('[ref='));
  const match = line && /\[ref=([^\]]+)\]/.exec(line);
  if (!match) throw new Error(`no ref for ${text} in:\n${observation}`);
  return match[1]!;
}

/**
 * A loopback server for fixture pages at a fixed origin for the whole test file: the files
 * of fixtures/pages, plus `/hang` (never answers), `/stream` (a document whose body never
 * ends) and `/echo-cookie` (the request's cookies as text).
 */
export async function startFixtureServer(): Promise<{ origin: string; close(): Promise<void> }> {
  const pages = path.join(FIXTURES, 'pages');
  const files = new Set(readdirSync(pages));
  const hanging = new Set<ServerResponse>();
  const server = createServer((request, response) => {
    const pathname = new URL(request.url ?? '/', 'http://x').pathname;
    if (pathname === '/hang') {
      hanging.add(response);
      return;
    }
    if (pathname === '/stream') {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.write('<title>Streaming</title><h1>Still streaming</h1><button>Poke</button>');
      hanging.add(response);
      return;
    }
    if (pathname === '/echo-cookie') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end(request.headers.cookie ?? '');
      return;
    }
    const name = pathname.slice(1) || 'index.html';
    if (!files.has(name)) {
      response.writeHead(404).end('not found');
      return;
    }
    const type = name.endsWith('.html') ? 'text/html; charset=utf-8' : 'text/javascript';
    response.writeHead(200, { 'content-type': type }).end(readFileSync(path.join(pages, name)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const response of hanging) response.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Pids of the Chromium browser processes this process started (found through /proc). */
export function browserPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (parent === process.pid && command.includes('--remote-debugging-pipe')) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}
