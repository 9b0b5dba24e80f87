/**
 * The build stamp: which sources dist/ was compiled from, and their modification times
 * as the compiler read them. bin/build.js writes it last, after every output is on disk;
 * bin/paddock.js reads it to decide whether dist/ may run in place of the sources.
 *
 * Kept in plain JavaScript with no dependencies, so that checking it costs one small
 * file read and a stat per source (about 200 stats, a few milliseconds).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The stamp file, relative to the package root. */
export const STAMP_FILE = 'dist/.build-stamp.json';

/** Version of the stamp's format; a stamp of another version is never fresh. */
export const STAMP_VERSION = 1;

/**
 * True when dist/ was built from the sources as they are now: the stamp exists and every
 * file it lists (sources and copied assets, relative to `root`) still has the
 * modification time recorded. A missing, unreadable or foreign stamp, a missing
 * `dist/cli/main.js`, or any file changed, touched or removed since counts as stale.
 * Files added since cannot change dist's behaviour until a listed file imports them, and
 * that edit changes the importer's time.
 *
 * @param {string} root the package root (the folder holding package.json)
 * @returns {boolean}
 */
export function distIsFresh(root) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(root, STAMP_FILE), 'utf8'));
  } catch {
    return false; // no stamp (never built, or a build under way or failed): stale
  }
  if (stamp?.version !== STAMP_VERSION || typeof stamp.files !== 'object' || stamp.files === null)
    return false;
  if (statSync(join(root, 'dist/cli/main.js'), { throwIfNoEntry: false }) === undefined) return false;
  for (const [file, mtimeMs] of Object.entries(stamp.files)) {
    // Equality, not "older than": a file put back with an older time (a checkout, an
    // unpacked archive, `cp -p`) is a change too.
    if (statSync(join(root, file), { throwIfNoEntry: false })?.mtimeMs !== mtimeMs) return false;
  }
  return true;
}
