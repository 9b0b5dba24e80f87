import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fillTemplate, packageName, parseNpx, resolveHostCommand } from '../../../sandboxes/mcp/launch.ts';

const REPO = path.resolve(import.meta.dirname, '../../..');

describe('parseNpx', () => {
  it('finds the package and its arguments', () => {
    expect(parseNpx(['npx', '-y', '@modelcontextprotocol/server-filesystem', '/work', '--x'])).toEqual({
      spec: '@modelcontextprotocol/server-filesystem',
      args: ['/work', '--x'],
    });
    expect(parseNpx(['npx', '--yes', '--', 'pkg@1.2.3'])).toEqual({ spec: 'pkg@1.2.3', args: [] });
    expect(parseNpx(['npx', '--package=@scope/tool@2', 'tool', 'a'])).toEqual({
      spec: '@scope/tool@2',
      args: ['a'],
    });
  });

  it('leaves other commands and unknown npx options alone', () => {
    expect(parseNpx(['node', 'x.js'])).toBeUndefined();
    expect(parseNpx(['npx', '--registry', 'x', 'pkg'])).toBeUndefined();
    expect(parseNpx(['npx', '-p', 'a', 'b'])).toBeUndefined();
  });
});

describe('packageName', () => {
  it('drops the version', () => {
    expect(packageName('pkg@1.2.3')).toBe('pkg');
    expect(packageName('@scope/pkg@^1')).toBe('@scope/pkg');
    expect(packageName('@scope/pkg')).toBe('@scope/pkg');
  });
});

describe('resolveHostCommand', () => {
  it('runs an installed package’s bin with this Node instead of downloading it', () => {
    const { command, args } = resolveHostCommand(
      ['npx', '-y', '@modelcontextprotocol/server-memory', 'a'],
      [REPO],
    );
    expect(command).toBe(process.execPath);
    expect(args).toEqual([
      path.join(REPO, 'node_modules/@modelcontextprotocol/server-memory/dist/index.js'),
      'a',
    ]);
  });

  it('keeps npx for a package that is not installed', () => {
    expect(resolveHostCommand(['npx', '-y', 'paddock-not-installed-pkg'], [REPO])).toEqual({
      command: 'npx',
      args: ['-y', 'paddock-not-installed-pkg'],
    });
  });

  it('runs node as this Node and finds bins in node_modules/.bin', () => {
    expect(resolveHostCommand(['node', 'x.js'], [REPO])).toEqual({
      command: process.execPath,
      args: ['x.js'],
    });
    const tsx = resolveHostCommand(['tsx', 'x.ts'], [REPO]);
    expect(tsx.args.at(-1)).toBe('x.ts');
    expect(tsx.command === process.execPath || tsx.command.endsWith('node_modules/.bin/tsx')).toBe(true);
  });
});

describe('fillTemplate', () => {
  it('fills session_dir and task_dir and leaves the rest', () => {
    expect(
      fillTemplate('{{session_dir}}/m.jsonl {{ task_dir }} {{other}}', { session_dir: '/s', task_dir: '/t' }),
    ).toBe('/s/m.jsonl /t {{other}}');
  });
});
