/**
 * A Docker build context on the host: the files it holds (after `.dockerignore`), a
 * content hash for caching builds, and its tar stream for the engine.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join, posix, relative, sep } from 'node:path';
import { pack } from 'tar-stream';
import type { Pack } from 'tar-stream';

/** One `.dockerignore` rule. */
export interface IgnoreRule {
  /** True for `!pattern` (re-include). */
  negate: boolean;
  regex: RegExp;
}

/**
 * Parses `.dockerignore` text: one pattern a line, `#` comments, `!` re-includes,
 * `*` / `?` / `[…]` within one path segment, `**` across segments; a leading `/` and
 * `./` are ignored (patterns are relative to the context root).
 */
export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    if (negate) line = line.slice(1).trim();
    line = posix
      .normalize(line)
      .replace(/^(\.\/|\/)+/, '')
      .replace(/\/+$/, '');
    if (!line || line === '.') continue;
    rules.push({ negate, regex: globToRegExp(line) });
  }
  return rules;
}

/** Go `filepath.Match`-style glob plus `**`, anchored on both ends. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob.charAt(i);
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches zero or more whole segments; a trailing `**` matches everything.
        i++;
        if (glob[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) {
        re += '\\[';
      } else {
        let body = glob.slice(i + 1, end);
        if (body.startsWith('^') || body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < glob.length) {
      i++;
      re += escapeRegExp(glob.charAt(i));
    } else {
      re += escapeRegExp(c);
    }
  }
  return new RegExp(`^${re}$`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * True when `relPath` (POSIX, relative to the context) is excluded: the last rule that
 * matches the path or one of its parent folders decides.
 */
export function isIgnored(relPath: string, rules: readonly IgnoreRule[]): boolean {
  if (rules.length === 0) return false;
  const parts = relPath.split('/');
  let ignored = false;
  for (const rule of rules) {
    let matches = false;
    for (let n = parts.length; n >= 1 && !matches; n--) {
      matches = rule.regex.test(parts.slice(0, n).join('/'));
    }
    if (matches) ignored = !rule.negate;
  }
  return ignored;
}

/** One entry of a build context. */
export interface ContextEntry {
  /** POSIX path relative to the context root. */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  /** Permission bits. */
  mode: number;
  /** Size in bytes (files). */
  size: number;
  /** Link target (symlinks). */
  linkname?: string;
  /** Absolute host path. */
  hostPath: string;
}

/**
 * Lists a context folder (sorted, `.dockerignore` applied; the Dockerfile and
 * `.dockerignore` themselves are always kept, as the docker CLI does). Sockets, fifos
 * and devices are skipped.
 */
export async function listContext(contextDir: string, keep: readonly string[] = []): Promise<ContextEntry[]> {
  let rules: IgnoreRule[] = [];
  try {
    rules = parseDockerignore(await readFile(join(contextDir, '.dockerignore'), 'utf8'));
  } catch {
    // No .dockerignore: everything is sent.
  }
  const hasNegations = rules.some((rule) => rule.negate);
  const always = new Set(['.dockerignore', ...keep]);
  const entries: ContextEntry[] = [];
  const walk = async (dir: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const hostPath = join(dir, name);
      const rel = relative(contextDir, hostPath).split(sep).join('/');
      const stat = await lstat(hostPath);
      const ignored = !always.has(rel) && isIgnored(rel, rules);
      if (stat.isDirectory()) {
        // An excluded folder is still walked when a `!` rule might re-include something in it.
        if (!ignored)
          entries.push({ path: rel, type: 'directory', mode: stat.mode & 0o7777, size: 0, hostPath });
        if (!ignored || hasNegations) await walk(hostPath);
      } else if (ignored) {
        continue;
      } else if (stat.isFile()) {
        entries.push({ path: rel, type: 'file', mode: stat.mode & 0o7777, size: stat.size, hostPath });
      } else if (stat.isSymbolicLink()) {
        entries.push({
          path: rel,
          type: 'symlink',
          mode: 0o777,
          size: 0,
          linkname: await readlink(hostPath),
          hostPath,
        });
      }
    }
  };
  await walk(contextDir);
  return entries;
}

/**
 * A sha256 over a context's entries (path, type, executable bit, content or link
 * target) and `extra` strings (the Dockerfile as built, the base images' ids…).
 * Modification times and owners do not count, so a fresh checkout hits the cache.
 */
export async function hashContext(
  entries: readonly ContextEntry[],
  extra: readonly string[],
): Promise<string> {
  const hash = createHash('sha256');
  hash.update('paddock-build-context-v1\0');
  for (const item of extra) hash.update(`${item.length}:${item}\0`);
  for (const entry of entries) {
    hash.update(`${entry.path}\0${entry.type}\0${entry.mode & 0o111 ? 'x' : '-'}\0`);
    if (entry.type === 'symlink') hash.update(`${entry.linkname ?? ''}\0`);
    if (entry.type === 'file') {
      hash.update(`${entry.size}\0`);
      for await (const chunk of createReadStream(entry.hostPath)) hash.update(chunk as Buffer);
    }
  }
  return hash.digest('hex');
}

/**
 * A tar stream of the context's entries; `replace` gives new contents for some paths
 * (the rewritten Dockerfile). Files are streamed from disk one at a time.
 */
export function packContext(
  entries: readonly ContextEntry[],
  replace: ReadonlyMap<string, string | Buffer>,
): Pack {
  const tar = pack();
  const run = async () => {
    for (const entry of entries) {
      const replacement = replace.get(entry.path);
      if (replacement !== undefined && entry.type === 'file') continue;
      await addEntry(tar, entry);
    }
    for (const [path, content] of replace) {
      const data = typeof content === 'string' ? Buffer.from(content) : content;
      await new Promise<void>((resolve, reject) =>
        tar.entry({ name: path, mode: 0o644, size: data.length }, data, (error) =>
          error ? reject(error) : resolve(),
        ),
      );
    }
    tar.finalize();
  };
  run().catch((error: unknown) => tar.destroy(error instanceof Error ? error : new Error(String(error))));
  return tar;
}

/** Adds one host entry to a tar pack; files are streamed. */
export async function addEntry(
  tar: Pack,
  entry: ContextEntry,
  name = entry.path,
  owner: { uid: number; gid: number } = { uid: 0, gid: 0 },
): Promise<void> {
  const header = { name, mode: entry.mode, uid: owner.uid, gid: owner.gid };
  if (entry.type === 'directory') {
    await new Promise<void>((resolve, reject) =>
      tar.entry({ ...header, type: 'directory' }, (error) => (error ? reject(error) : resolve())),
    );
  } else if (entry.type === 'symlink') {
    await new Promise<void>((resolve, reject) =>
      tar.entry({ ...header, type: 'symlink', linkname: entry.linkname ?? '' }, (error) =>
        error ? reject(error) : resolve(),
      ),
    );
  } else {
    await new Promise<void>((resolve, reject) => {
      const sink = tar.entry({ ...header, type: 'file', size: entry.size }, (error) =>
        error ? reject(error) : resolve(),
      );
      const source = createReadStream(entry.hostPath);
      source.on('error', (error) => {
        sink.destroy(error);
        reject(error);
      });
      source.pipe(sink);
    });
  }
}
