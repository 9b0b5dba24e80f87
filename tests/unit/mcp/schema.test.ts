import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  isMcpConfig,
  mcpTaskExtension,
  namespacedName,
  parseMcpConfig,
  splitCommand,
  type McpConfig,
} from '../../../sandboxes/mcp/index.ts';
import { loadTasks } from '../../../tasks/index.ts';

function parse(value: unknown): McpConfig {
  const parsed = parseMcpConfig(value);
  if (!parsed.success) throw new Error(JSON.stringify(parsed.issues));
  return parsed.data;
}

function issues(value: unknown): { path: string; message: string }[] {
  const parsed = parseMcpConfig(value);
  if (parsed.success) throw new Error('expected a failure');
  return parsed.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
}

describe('mcp_servers section', () => {
  it('reads a list of servers with defaults, splitting string commands like a shell', () => {
    const config = parse([
      { name: 'fs', command: 'npx -y @modelcontextprotocol/server-filesystem "/my dir"', where: 'sandbox' },
      { name: 'search', url: 'http://127.0.0.1:8931/mcp', call_timeout_sec: 2.5 },
    ]);
    expect(config.servers[0]).toMatchObject({
      name: 'fs',
      transport: 'stdio',
      command: ['npx', '-y', '@modelcontextprotocol/server-filesystem', '/my dir'],
      shellCommand: 'npx -y @modelcontextprotocol/server-filesystem "/my dir"',
      where: 'sandbox',
      stateless: false,
      restart: false,
      callTimeoutMs: 60_000,
      startupTimeoutMs: 30_000,
      maxOutputBytes: 65_536,
    });
    expect(config.servers[1]).toMatchObject({
      transport: 'streamable-http',
      url: 'http://127.0.0.1:8931/mcp',
      callTimeoutMs: 2_500,
    });
    expect(config.score).toEqual([]);
  });

  it('reads scores given under a server and in a score list', () => {
    const config = parse({
      servers: [
        {
          name: 'memory',
          command: ['node', 'server.js'],
          score: { tool: 'read_graph', expect: { contains: 'Ada' } },
        },
      ],
      score: [
        {
          name: 'custom',
          server: 'memory',
          tool: 'search_nodes',
          arguments: { query: 'x' },
          expect: [{ exists: true }],
          partial: true,
        },
        { script: 'scorers/check.ts' },
      ],
    });
    expect(config.score).toEqual([
      {
        kind: 'call',
        name: 'memory.read_graph',
        server: 'memory',
        tool: 'read_graph',
        arguments: {},
        expect: [{ contains: 'Ada' }],
        partial: false,
        from: 'structured',
      },
      {
        kind: 'call',
        name: 'custom',
        server: 'memory',
        tool: 'search_nodes',
        arguments: { query: 'x' },
        expect: [{ exists: true }],
        partial: true,
        from: 'structured',
      },
      { kind: 'script', name: 'check', script: 'scorers/check.ts' },
    ]);
  });

  it("reads Harbor's tables leniently, running stdio servers in the sandbox when there is one", () => {
    const config = parse([
      {
        name: 'tools',
        transport: 'stdio',
        command: 'python',
        args: ['-m', 'server'],
        env: { A: 1 },
        unknown_key: true,
      },
      { name: 'remote', transport: 'streamable-http', url: 'https://example.org/mcp' },
    ]);
    expect(config.servers[0]).toMatchObject({
      command: ['python', '-m', 'server'],
      where: 'auto',
      env: { A: '1' },
    });
    expect(config.servers[0]?.shellCommand).toBeUndefined();
    expect(config.servers[1]).toMatchObject({ transport: 'streamable-http', where: 'host' });
  });

  it('refuses our own unknown keys with their path', () => {
    expect(issues([{ name: 'a', command: 'x', colour: 'red' }])).toEqual([
      { path: '0.colour', message: 'unknown key' },
    ]);
  });

  it('refuses two servers of one name at load time', () => {
    expect(
      issues([
        { name: 'a', command: 'x' },
        { name: 'a', command: 'y' },
      ]),
    ).toEqual([
      { path: '1.name', message: 'two servers are named "a" (also entry 0); names must be unique' },
    ]);
  });

  it('refuses names that would make namespaced tool names ambiguous', () => {
    expect(issues([{ name: 'a__b', command: 'x' }])[0]?.path).toBe('0.name');
    expect(issues([{ name: 'a_', command: 'x' }])[0]?.path).toBe('0.name');
  });

  it('refuses allow-listed tools whose namespaced names collide', () => {
    expect(issues([{ name: 'a', command: 'x', tools: ['get.item', 'get_item'] }])).toEqual([
      { path: '0.tools.1', message: 'tool "get_item" would be named a__get_item, like a/get.item' },
    ]);
  });

  it('refuses servers that cannot work as written', () => {
    expect(issues([{ name: 'a' }])).toEqual([
      { path: '0.command', message: 'required: a stdio server needs a command' },
    ]);
    expect(issues([{ name: 'a', command: 'x', url: 'http://h/mcp' }]).map((issue) => issue.path)).toEqual([
      '0.command',
    ]);
    expect(
      issues([{ name: 'a', command: 'x', where: 'sandbox', stateless: true }]).map((issue) => issue.path),
    ).toEqual(['0.stateless']);
    expect(issues([{ name: 'a', url: 'http://h/mcp', where: 'sandbox' }]).map((issue) => issue.path)).toEqual(
      ['0.where'],
    );
    expect(issues([{ name: 'a', url: 'ftp://h' }]).map((issue) => issue.path)).toEqual(['0.url']);
  });

  it('refuses score entries naming an unknown server or checking nothing', () => {
    expect(
      issues({
        servers: [{ name: 'a', command: 'x' }],
        score: [{ server: 'b', tool: 't', expect: { equals: 1 } }],
      }),
    ).toEqual([{ path: 'score.0.server', message: 'no server is named "b"' }]);
    expect(issues({ servers: [], score: [{ server: 'b', tool: 't', expect: {} }] })[0]?.path).toBe(
      'score.0.expect',
    );
  });

  it('parses its own output again to the same config', () => {
    const config = parse([{ name: 'a', command: 'x' }]);
    expect(isMcpConfig(config)).toBe(true);
    expect(mcpTaskExtension.parse(config)).toBe(config);
  });

  it('reports problems through the task loader with the file and the field path', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'paddock-mcp-schema-'));
    writeFileSync(
      path.join(dir, 'task.yaml'),
      'instruction: x\nenvironment: false\nverifier: false\nmcp_servers:\n  - { name: m, command: a }\n  - { name: m, command: b }\n',
    );
    const error = await loadTasks(dir, { extensions: { mcp_servers: mcpTaskExtension } }).catch(
      (caught: unknown) => caught,
    );
    expect((error as Error).message).toContain('mcp_servers.1.name: two servers are named "m"');
  });

  it('gives a loaded task its parsed section', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'paddock-mcp-schema-'));
    writeFileSync(
      path.join(dir, 'task.yaml'),
      'instruction: x\nenvironment: false\nverifier: false\nmcp_servers:\n  - { name: m, command: [node, s.js] }\n',
    );
    const [task] = await loadTasks(dir, { extensions: { mcp_servers: mcpTaskExtension } });
    expect(isMcpConfig(task?.extensions.mcp_servers)).toBe(true);
  });
});

describe('splitCommand', () => {
  it('splits on whitespace and keeps quoted words whole', () => {
    expect(splitCommand(`a  b 'c d' "e \\"f\\"" g\\ h ''`)).toEqual(['a', 'b', 'c d', 'e "f"', 'g h', '']);
  });
  it('returns argv lists as they are', () => {
    expect(splitCommand(['a b', 'c'])).toEqual(['a b', 'c']);
  });
});

describe('namespacedName', () => {
  it('is <server>__<tool>', () => {
    expect(namespacedName('memory', 'read_graph')).toBe('memory__read_graph');
    expect(namespacedName('everything', 'get-sum')).toBe('everything__get-sum');
  });
  it('replaces characters model APIs refuse', () => {
    expect(namespacedName('fs', 'files.read/v2')).toBe('fs__files_read_v2');
  });
  it('cuts long names to 64 characters with a stable hash of the original', () => {
    const long = 'a'.repeat(80);
    const name = namespacedName('server', long);
    expect(name).toHaveLength(64);
    expect(name).toMatch(/^server__a+_[0-9a-f]{8}$/);
    expect(namespacedName('server', long)).toBe(name);
    expect(namespacedName('server', `${long}b`)).not.toBe(name);
  });
});
