/**
 * The folder tells the architecture: each folder imports only what the layout allows,
 * and each third-party dependency is imported only inside its own folder.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

/** Top-level folders each folder may import (besides itself). */
const ALLOWED: Record<string, string[]> = {
  harness: [],
  sandboxes: ['harness'],
  tasks: ['harness'],
  agents: ['harness'],
  trainers: ['harness', 'agents'],
};

/** Where each dependency may be imported. */
const DEPENDENCY_HOMES: Record<string, string[]> = {
  dockerode: ['sandboxes/docker'],
  'playwright-core': ['sandboxes/browser'],
  '@modelcontextprotocol/sdk': ['sandboxes/mcp'],
  'onnxruntime-node': ['agents/onnx', 'rewards'],
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
  for (const [folder, allowed] of Object.entries(ALLOWED)) {
    it(`${folder}/ imports only ${allowed.length > 0 ? allowed.join(', ') : 'itself'} among the project's folders`, () => {
      const offending: string[] = [];
      for (const file of sourceFiles(join(ROOT, folder))) {
        for (const specifier of imports(file)) {
          if (!specifier.startsWith('.')) continue;
          const target = relative(ROOT, resolve(file, '..', specifier)).split('/')[0]!;
          if (target !== folder && !allowed.includes(target))
            offending.push(`${relative(ROOT, file)} → ${specifier}`);
        }
      }
      expect(offending).toEqual([]);
    });
  }

  it('imports each dependency only inside its own folder', () => {
    const offending: string[] = [];
    for (const folder of [...Object.keys(ALLOWED), 'cli']) {
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
