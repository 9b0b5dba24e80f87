/**
 * Reading task files: existence checks and YAML / TOML parsing that turns syntax errors
 * into problems naming the file and line.
 */
import { readFile, stat } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { TaskProblem } from './problems.ts';

/** What is at a host path: `'file'`, `'dir'` or `undefined` when nothing is. */
export async function kindOf(hostPath: string): Promise<'file' | 'dir' | undefined> {
  try {
    const info = await stat(hostPath);
    return info.isDirectory() ? 'dir' : 'file';
  } catch (error) {
    // A missing path (or one we may not read) is reported by the caller as "does not exist".
    if (
      isNodeError(error) &&
      (error.code === 'ENOENT' || error.code === 'ENOTDIR' || error.code === 'EACCES')
    ) {
      return undefined;
    }
    throw error;
  }
}

function isNodeError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && 'code' in error;
}

/** The parsed document, or the problems that kept it from parsing. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; problems: TaskProblem[] };

/** Reads a UTF-8 file; a read failure becomes a problem of that file. */
export async function readText(
  file: string,
): Promise<{ ok: true; text: string } | { ok: false; problems: TaskProblem[] }> {
  try {
    return { ok: true, text: await readFile(file, 'utf8') };
  } catch (error) {
    return { ok: false, problems: [{ file, path: '', message: `cannot read: ${(error as Error).message}` }] };
  }
}

/** Parses YAML text; every syntax error (duplicate keys included) becomes a problem with its line. */
export function parseYamlText(file: string, text: string): Parsed<unknown> {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (document.errors.length > 0) {
    return {
      ok: false,
      problems: document.errors.map((error) => ({
        file,
        line: lineCounter.linePos(error.pos[0]).line,
        path: '',
        message: `YAML syntax error: ${error.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '')}`,
      })),
    };
  }
  return { ok: true, value: document.toJS({ maxAliasCount: 100 }) };
}

/** Parses TOML text; a syntax error becomes a problem with its line. */
export function parseTomlText(file: string, text: string): Parsed<Record<string, unknown>> {
  try {
    return { ok: true, value: parseToml(text) };
  } catch (error) {
    if (error instanceof TomlError) {
      const firstLine = error.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? 'invalid';
      return {
        ok: false,
        problems: [{ file, line: error.line, path: '', message: `TOML syntax error: ${firstLine}` }],
      };
    }
    throw error;
  }
}
