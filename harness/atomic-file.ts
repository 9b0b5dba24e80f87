/**
 * Files written whole or not at all: into a fresh temporary name beside the target (opened
 * with O_EXCL and O_NOFOLLOW, so that a link planted there is never written through),
 * fsync'd, then renamed over the target (rename replaces a link itself, not its target).
 */
import {
  closeSync,
  constants as fsConstants,
  fsyncSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** O_NOFOLLOW where the platform has it. */
const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;

/**
 * Writes all of `data` at `position`, however many calls it takes: `writeSync` may write
 * part of it (a nearly full disk, a signal). A write that makes no progress is ENOSPC.
 */
export function writeFully(fd: number, data: Uint8Array, position: number): void {
  let offset = 0;
  while (offset < data.length) {
    const written = writeSync(fd, data, offset, data.length - offset, position + offset);
    if (written <= 0) {
      throw Object.assign(new Error('no space left on device: a write made no progress'), { code: 'ENOSPC' });
    }
    offset += written;
  }
}

/**
 * Writes `data` to `path` through a temporary file in the same folder: the file is whole
 * or absent. Rejects with the file system's error (the temporary file removed).
 */
export function writeFileAtomic(path: string, data: Uint8Array, mode = 0o644): void {
  const tmp = join(
    dirname(path),
    `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`,
  );
  let fd: number | undefined;
  try {
    fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_NOFOLLOW, mode);
    writeFully(fd, data, 0);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
}
