/**
 * A small MCP server written with the SDK, for example tasks and tests: an arithmetic
 * evaluator, a price catalogue to look things up in, and a ledger the agent records
 * answers in (its state is what tasks score).
 *
 *   node --import tsx sandboxes/mcp/servers/calculator.ts [--catalog file.json]            # stdio
 *   node --import tsx sandboxes/mcp/servers/calculator.ts --http 8931 [--host 127.0.0.1]   # streamable HTTP at /mcp
 *
 * Tools: `evaluate {expression}`, `lookup {item}`, `list_items`, `record {key, value}`,
 * `ledger`. Over HTTP every session has its own ledger.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

/** One item of the catalogue. */
export interface CatalogItem {
  price: number;
  unit: string;
  stock: number;
}

/** The catalogue used when none is given. */
export const DEFAULT_CATALOG: Readonly<Record<string, CatalogItem>> = {
  widget: { price: 12.5, unit: 'piece', stock: 40 },
  gadget: { price: 8.25, unit: 'piece', stock: 12 },
  gizmo: { price: 3.1, unit: 'piece', stock: 250 },
  sprocket: { price: 0.75, unit: 'piece', stock: 1000 },
  cable: { price: 1.2, unit: 'metre', stock: 500 },
};

const CatalogSchema = z.record(
  z.string(),
  z.object({ price: z.number(), unit: z.string().default('piece'), stock: z.number().int().default(0) }),
);

/** Evaluates an arithmetic expression: numbers, + - * / % ^, parentheses, sqrt abs round floor ceil min max. */
export function evaluateExpression(expression: string): number {
  const tokens = expression.match(/\d+(?:\.\d+)?(?:e[+-]?\d+)?|[A-Za-z]+|\S/gi) ?? [];
  let i = 0;
  const peek = () => tokens[i];
  const take = (expected?: string): string => {
    const token = tokens[i++];
    if (token === undefined || (expected !== undefined && token !== expected)) {
      throw new Error(expected ? `expected "${expected}"` : 'unexpected end of expression');
    }
    return token;
  };
  const functions: Record<string, (...args: number[]) => number> = {
    sqrt: Math.sqrt,
    abs: Math.abs,
    round: Math.round,
    floor: Math.floor,
    ceil: Math.ceil,
    min: Math.min,
    max: Math.max,
  };
  const primary = (): number => {
    const token = take();
    if (token === '(') {
      const value = sum();
      take(')');
      return value;
    }
    if (token === '-') return -power();
    if (token === '+') return power();
    if (/^\d/.test(token)) return Number(token);
    const fn = functions[token.toLowerCase()];
    if (fn) {
      take('(');
      const args = [sum()];
      while (peek() === ',') {
        take(',');
        args.push(sum());
      }
      take(')');
      return fn(...args);
    }
    throw new Error(`unexpected "${token}"`);
  };
  const power = (): number => {
    const base = primary();
    if (peek() === '^') {
      take('^');
      return base ** power();
    }
    return base;
  };
  const product = (): number => {
    let value = power();
    for (let op = peek(); op === '*' || op === '/' || op === '%'; op = peek()) {
      take();
      const right = power();
      value = op === '*' ? value * right : op === '/' ? value / right : value % right;
    }
    return value;
  };
  const sum = (): number => {
    let value = product();
    for (let op = peek(); op === '+' || op === '-'; op = peek()) {
      take();
      const right = product();
      value = op === '+' ? value + right : value - right;
    }
    return value;
  };
  const value = sum();
  if (i < tokens.length) throw new Error(`unexpected "${tokens[i]}"`);
  if (!Number.isFinite(value)) throw new Error('the result is not a finite number');
  return value;
}

/** A calculator server with its own ledger. */
export function createCalculatorServer(
  catalog: Readonly<Record<string, CatalogItem>> = DEFAULT_CATALOG,
): McpServer {
  const server = new McpServer({ name: 'paddock-calculator', version: '0.1.0' });
  const ledger: Record<string, number> = {};

  server.registerTool(
    'evaluate',
    {
      description:
        'Evaluate an arithmetic expression (+ - * / % ^, parentheses, sqrt, abs, round, floor, ceil, min, max).',
      inputSchema: { expression: z.string().min(1).describe('e.g. "3 * (2 + 4.5)"') },
      outputSchema: { value: z.number() },
    },
    async ({ expression }) => {
      try {
        const value = evaluateExpression(expression);
        return { content: [{ type: 'text', text: JSON.stringify({ value }) }], structuredContent: { value } };
      } catch (error) {
        return {
          content: [{ type: 'text', text: `Cannot evaluate: ${(error as Error).message}` }],
          isError: true,
        };
      }
    },
  );

  server.registerTool(
    'lookup',
    {
      description: 'Look up an item of the price catalogue: its unit price, unit and stock.',
      inputSchema: { item: z.string().min(1) },
    },
    async ({ item }) => {
      const entry = catalog[item.toLowerCase()];
      if (!entry) {
        return {
          content: [
            {
              type: 'text',
              text: `No item named "${item}". Known items: ${Object.keys(catalog).join(', ')}.`,
            },
          ],
          isError: true,
        };
      }
      const found = { item: item.toLowerCase(), ...entry };
      return { content: [{ type: 'text', text: JSON.stringify(found) }], structuredContent: found };
    },
  );

  server.registerTool('list_items', { description: 'List the items of the price catalogue.' }, async () => ({
    content: [{ type: 'text', text: Object.keys(catalog).join('\n') }],
  }));

  server.registerTool(
    'record',
    {
      description: 'Record a number under a key in the ledger (overwrites the key).',
      inputSchema: { key: z.string().min(1), value: z.number() },
    },
    async ({ key, value }) => {
      ledger[key] = value;
      return { content: [{ type: 'text', text: `Recorded ${key} = ${value}.` }] };
    },
  );

  server.registerTool('ledger', { description: 'Show every record of the ledger.' }, async () => {
    const records = { ...ledger };
    return { content: [{ type: 'text', text: JSON.stringify({ records }) }], structuredContent: { records } };
  });

  return server;
}

/** Serves fresh calculator sessions over streamable HTTP at `/mcp`; resolves with the bound port. */
export async function serveCalculatorHttp(
  port: number,
  host = '127.0.0.1',
  catalog: Readonly<Record<string, CatalogItem>> = DEFAULT_CATALOG,
): Promise<{ port: number; close(): Promise<void> }> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (!request.url?.startsWith('/mcp')) {
      response.writeHead(404).end();
      return;
    }
    const id = request.headers['mcp-session-id'];
    let transport = typeof id === 'string' ? sessions.get(id) : undefined;
    if (!transport) {
      if (typeof id === 'string') {
        response.writeHead(404).end('unknown session');
        return;
      }
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (sessionId) => {
          sessions.set(sessionId, created);
        },
        onsessionclosed: (sessionId) => {
          sessions.delete(sessionId);
        },
      });
      transport = created;
      await createCalculatorServer(catalog).connect(transport);
    }
    await transport.handleRequest(request, response);
  };
  const server = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: async () => {
      await Promise.all([...sessions.values()].map((transport) => transport.close()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function main(argv: readonly string[]): Promise<void> {
  const option = (name: string) => {
    const index = argv.indexOf(name);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const catalogFile = option('--catalog');
  const catalog = catalogFile
    ? CatalogSchema.parse(JSON.parse(readFileSync(catalogFile, 'utf8')))
    : DEFAULT_CATALOG;
  const httpPort = option('--http');
  if (httpPort !== undefined) {
    const served = await serveCalculatorHttp(Number(httpPort), option('--host') ?? '127.0.0.1', catalog);
    process.stderr.write(`calculator MCP server on http://127.0.0.1:${served.port}/mcp\n`);
    return;
  }
  await createCalculatorServer(catalog).connect(new StdioServerTransport());
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`calculator: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
