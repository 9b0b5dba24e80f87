/**
 * The folder tells the architecture: each folder imports only what the layout allows,
 * and each third-party dependency is imported only inside its own folder.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * What each folder may import besides itself, as Playwright's DEPS lists say it: the most
 * specific entry for a file wins (a file, then its folder, then the folder above). An
 * entry names a folder (any file in it) or one file. Imports across rooms other than the
 * harness go through a room's public surface: its `index.ts`, or the `plugin.ts` the
 * composition root registers.
 *
 *   harness           the ground: contracts, the episode loop, the store — imports nothing
 *   tasks, agents/*, sandboxes/*, rewards, export, testing   plug-ins and rooms over the harness
 *   trainers          training: the harness, rewards, and the agents it rolls out with
 *   viewer            the web viewer: reads the store, serves pages; the harness only
 *   cli               the composition root (createPaddock) and the command line
 */
const DEPS: Record<string, string[]> = {
  harness: [],
  tasks: ['harness'],
  agents: ['harness'],
  'agents/openai': ['harness', 'agents/http.ts', 'agents/anthropic/index.ts'],
  'agents/anthropic': ['harness', 'agents/http.ts'],
  'agents/plugin.ts': [
    'harness',
    'agents/openai/index.ts',
    'agents/oracle/index.ts',
    'agents/scripted/index.ts',
  ],
  sandboxes: ['harness'],
  // The GUI-grounding formulas are pure maths: the browser scores points with them.
  'sandboxes/browser': ['harness', 'rewards/grounding.ts'],
  rewards: ['harness'],
  export: ['harness'],
  testing: ['harness'],
  viewer: ['harness'],
  trainers: [
    'harness',
    'rewards',
    'agents/onnx/index.ts',
    'agents/openai/index.ts',
    'agents/oracle/index.ts',
  ],
  // Evaluation never imports training; only `paddock train` does.
  cli: ['harness', 'tasks', 'agents', 'sandboxes', 'rewards', 'export', 'viewer'],
  'cli/train.ts': ['harness', 'trainers'],
  'cli/index.ts': [
    'harness',
    'tasks',
    'agents',
    'sandboxes',
    'rewards',
    'export',
    'testing',
    'trainers',
    'viewer',
  ],
};

/** The DEPS entry that governs `file` (repo-relative), and its key. */
function rulesFor(file: string): [string, string[]] {
  const parts = file.split('/');
  for (let n = parts.length; n > 0; n--) {
    const key = parts.slice(0, n).join('/');
    if (DEPS[key]) return [key, DEPS[key]];
  }
  throw new Error(`no DEPS entry covers ${file}`);
}

/** The part of the tree a file belongs to for DEPS: `sandboxes/docker`, `agents/openai`, `harness`… */
function unitOf(file: string): string {
  const parts = file.split('/');
  return ['agents', 'sandboxes'].includes(parts[0]!) && parts.length > 2
    ? parts.slice(0, 2).join('/')
    : parts[0]!;
}

/** A room's public surface: what another room may import of it. */
function isPublic(target: string): boolean {
  return target.startsWith('harness/') || /(^|\/)(index|plugin)\.ts$/.test(target);
}

/** Where each dependency may be imported. */
const DEPENDENCY_HOMES: Record<string, string[]> = {
  dockerode: ['sandboxes/docker'],
  'playwright-core': ['sandboxes/browser'],
  '@modelcontextprotocol/sdk': ['sandboxes/mcp'],
  'onnxruntime-node': ['agents/onnx', 'rewards'],
  '@huggingface/tokenizers': ['agents/onnx'],
  '@huggingface/jinja': ['agents/onnx'],
  vitest: ['testing'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name.startsWith('.')) return [];
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts)$/.test(name) ? [path] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [
    ...text.matchAll(
      /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g,
    ),
  ].map((match) => (match[1] ?? match[2])!);
}

describe('architecture', () => {
  const folders = [
    'harness',
    'tasks',
    'agents',
    'sandboxes',
    'rewards',
    'export',
    'testing',
    'trainers',
    'viewer',
    'cli',
  ];

  it('keeps every folder to its DEPS list (see the table above)', () => {
    const offending: string[] = [];
    for (const folder of folders) {
      for (const file of sourceFiles(join(ROOT, folder))) {
        const path = relative(ROOT, file);
        const [key, allowed] = rulesFor(path);
        for (const specifier of imports(file)) {
          if (!specifier.startsWith('.')) continue;
          const target = relative(ROOT, resolve(file, '..', specifier));
          if (unitOf(target) === unitOf(path)) continue;
          const permitted = allowed.some((entry) => target === entry || target.startsWith(`${entry}/`));
          if (!permitted)
            offending.push(`${path} → ${target} (DEPS['${key}'] allows ${allowed.join(', ') || 'nothing'})`);
          else if (!isPublic(target) && !allowed.includes(target))
            offending.push(`${path} → ${target} (not a public surface: index.ts or plugin.ts)`);
        }
      }
    }
    expect(offending).toEqual([]);
  });

  it('has a DEPS entry for every top-level source folder', () => {
    const top = readdirSync(ROOT).filter(
      (name) =>
        !name.startsWith('.') &&
        !['node_modules', 'dist', 'runs', 'tests', 'bench', 'bin', 'scripts'].includes(name) &&
        statSync(join(ROOT, name)).isDirectory() &&
        sourceFiles(join(ROOT, name)).length > 0,
    );
    expect(top.filter((name) => !DEPS[name])).toEqual([]);
  });

  it('imports each dependency only inside its own folder', () => {
    const offending: string[] = [];
    for (const folder of folders) {
      for (const file of sourceFiles(join(ROOT, folder))) {
        const path = relative(ROOT, file);
        for (const specifier of imports(file)) {
          const home = Object.entries(DEPENDENCY_HOMES).find(
            ([dependency]) => specifier === dependency || specifier.startsWith(`${dependency}/`),
          );
          if (home && !home[1].some((allowed) => path.startsWith(`${allowed}/`)))
            offending.push(`${path} → ${specifier}`);
        }
      }
    }
    expect(offending).toEqual([]);
  });
});
