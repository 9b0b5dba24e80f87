/**
 * Images as episode records keep them. A live message always carries its image's bytes
 * (`ImagePart`, what agents send to model APIs); when the run store writes a record, an
 * image larger than a threshold is written once to the run folder, content-addressed
 * (`images/<sha256>.<ext>`), and the record holds an {@link ImageFileRef} in its place.
 * An image past the episode's image budget keeps only its type, size and hash
 * (`omitted`), never silently dropped. Records read back hold {@link RecordedImage}s.
 *
 * A record is data that may have been edited: {@link readRecordedImage} reads only a file
 * named `images/<64 hex>.<ext>` inside the run folder, never through a symbolic link, and
 * only when its bytes hash to the name.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.ts';
import { ERROR_CODES, PaddockError, describeError } from './errors.ts';
import type { RecordedEpisode } from './episode.ts';
import type { ImagePart } from './tool.ts';

/** An image of a record whose bytes are in a file of the run folder, or were not kept. */
export interface ImageFileRef {
  mimeType: string;
  /** The image's size in bytes (decoded). */
  bytes: number;
  /** SHA-256 of the bytes, lowercase hex. */
  sha256: string;
  /**
   * Where the bytes are, relative to the run folder: `images/<sha256>.<ext>` (the
   * extension from the type: `png`, `jpg`, `gif`, `webp`…, `bin` when unknown). Absent
   * when the bytes were not kept (`omitted`).
   */
  file?: string;
  /** Why the bytes were not kept, e.g. `over the episode's image budget`; no `file` then. */
  omitted?: string;
}

/** An image as a record read back holds it: inline (small images, runs written before files) or a reference. */
export type RecordedImage = ImagePart | ImageFileRef;

/** What an image reference's `file` must look like. */
export const IMAGE_FILE_PATTERN = /^images\/([0-9a-f]{64})\.([a-z]+)$/;

/** The folder of the run folder that holds image files. */
export const IMAGES_DIR = 'images';

/** Why an image is omitted when the episode's budget is spent. */
export const OVER_BUDGET = "over the episode's image budget";

/** True when the image is a reference (no inline bytes). */
export function isImageFileRef(image: RecordedImage): image is ImageFileRef {
  return typeof (image as Partial<ImagePart>).dataBase64 !== 'string';
}

/** The length of the bytes a base64 text decodes to, without decoding it. */
export function base64Length(text: string): number {
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  return Math.max(0, Math.floor((text.length * 3) / 4) - padding);
}

/** An image's size in bytes, inline or referenced, without reading it. */
export function recordedImageBytes(image: RecordedImage): number {
  return isImageFileRef(image) ? image.bytes : base64Length(image.dataBase64);
}

const EXTENSIONS: Readonly<Record<string, string>> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/jpg': 'jpg',
  'image/gif': 'gif',
  'image/webp': 'webp',
  'image/bmp': 'bmp',
  'image/avif': 'avif',
  'image/tiff': 'tiff',
  'image/svg+xml': 'svg',
};

/** The file extension for an image type (`png` for `image/png`); `bin` for a type it does not know. */
export function imageExtension(mimeType: string): string {
  return EXTENSIONS[mimeType.trim().toLowerCase()] ?? 'bin';
}

/** SHA-256 of `bytes`, lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function refused(message: string, details: Record<string, unknown>, cause?: unknown): PaddockError {
  return new PaddockError(ERROR_CODES.STORE_FAILED, message, {
    ...(cause === undefined ? {} : { cause }),
    details,
  });
}

/** `lstat`, or undefined when nothing is there. */
function lstatOrNone(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Opens a file for reading without following a symbolic link in its last part (where the system can). */
const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;

/** Reads a whole regular file through an fd opened without following links; undefined when absent. */
function readRegularFile(path: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | O_NOFOLLOW);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw Object.assign(new Error(`${path} is a symbolic link`), { code: 'ELOOP' });
    throw error;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'EFTYPE' });
    const bytes = Buffer.alloc(stat.size);
    let offset = 0;
    while (offset < bytes.length) {
      const read = readSync(fd, bytes, offset, bytes.length - offset, offset);
      if (read <= 0) break;
      offset += read;
    }
    return offset === bytes.length ? bytes : bytes.subarray(0, offset);
  } finally {
    closeSync(fd);
  }
}

/**
 * The checked path of a reference's file in `runDir`: its `file` must be
 * `images/<sha256>.<ext>` with the reference's own hash, and `runDir/images` a real folder
 * (not a symbolic link).
 * @throws PaddockError STORE_FAILED naming what is wrong.
 */
export function imageFilePath(runDir: string, image: ImageFileRef): string {
  const file = image.file;
  const match = typeof file === 'string' ? IMAGE_FILE_PATTERN.exec(file) : null;
  if (!match) {
    throw refused(
      `refusing image file ${JSON.stringify(file)} named by a record in ${runDir}: ` +
        'a record may name only images/<sha256>.<ext> in its run folder (was the record edited?)',
      { runDir, file },
    );
  }
  if (match[1] !== image.sha256) {
    throw refused(
      `refusing image file ${file} named by a record in ${runDir}: its name does not match the record's sha256 ` +
        `${JSON.stringify(image.sha256)} (was the record edited?)`,
      { runDir, file },
    );
  }
  const dir = join(runDir, IMAGES_DIR);
  const stat = lstatOrNone(dir);
  if (stat && !stat.isDirectory()) {
    throw refused(
      `refusing image file ${file} in ${runDir}: ${dir} is ${stat.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}; ` +
        'the store writes a plain folder there',
      { runDir, file },
    );
  }
  return join(dir, `${match[1]}.${match[2]}`);
}

/**
 * The bytes of a recorded image: decoded when inline, read from the run folder when a
 * reference (checked: see {@link imageFilePath}; never through a symbolic link; the bytes
 * must hash to the reference's sha256), undefined when the record kept none (`omitted`).
 * @throws PaddockError STORE_FAILED when a reference names a file it may not, the file is
 *   a link or not a regular file, is missing, or its bytes are not the ones recorded.
 */
export function readRecordedImage(runDir: string, image: RecordedImage): Buffer | undefined {
  if (!isImageFileRef(image)) return Buffer.from(image.dataBase64, 'base64');
  if (image.file === undefined) return undefined;
  const path = imageFilePath(runDir, image);
  let bytes: Buffer | undefined;
  try {
    bytes = readRegularFile(path);
  } catch (error) {
    throw refused(`refusing image file ${image.file} in ${runDir}: ${describeError(error)}`, {
      runDir,
      file: image.file,
    });
  }
  if (bytes === undefined) {
    throw refused(
      `image file ${image.file} named by a record is missing from ${runDir} (was the run copied without its images/ folder?)`,
      { runDir, file: image.file },
    );
  }
  if (sha256Hex(bytes) !== image.sha256) {
    throw refused(
      `image file ${image.file} in ${runDir} does not hold the bytes the record names (its SHA-256 differs): ` +
        'the file was changed after it was written',
      { runDir, file: image.file },
    );
  }
  return bytes;
}

/** Limits of images in records. */
export interface RecordImageOptions {
  /**
   * Images up to this many bytes (decoded) stay inline in the record; larger ones are
   * written to `images/` and referenced. @default 4096
   */
  inlineMaxBytes?: number;
  /**
   * Bytes of distinct images one episode's record may keep (inline or in files, an image
   * seen twice counted once). Images are kept in the order of the conversation until one
   * would pass the budget: that one and every later image not kept already become
   * `omitted` references (type, size and hash; no bytes). @default 64 MiB
   */
  episodeBudgetBytes?: number;
}

export const DEFAULT_INLINE_MAX_BYTES = 4096;
export const DEFAULT_EPISODE_IMAGE_BUDGET = 64 * 1024 * 1024;

/** What recording an episode's images did. */
export interface RecordedImages {
  /** The record to write: a copy of the one given where any image changed, else the same object. */
  record: RecordedEpisode;
  /** Image files written by this call (relative to the run folder). */
  written: string[];
}

/**
 * Writes a run's images into `<runDir>/images/` content-addressed and turns records'
 * large images into references. One writer per run (the store's lock); it remembers the
 * files it wrote or checked, so that a screenshot repeated across episodes is written and
 * checked once.
 */
export class RunImageWriter {
  private readonly inlineMaxBytes: number;
  private readonly budget: number;
  /** Files present and checked (or written) by this writer. */
  private readonly present = new Set<string>();

  constructor(
    readonly runDir: string,
    options: RecordImageOptions = {},
  ) {
    this.inlineMaxBytes = options.inlineMaxBytes ?? DEFAULT_INLINE_MAX_BYTES;
    this.budget = options.episodeBudgetBytes ?? DEFAULT_EPISODE_IMAGE_BUDGET;
    for (const [name, value] of [
      ['inlineMaxBytes', this.inlineMaxBytes],
      ['episodeBudgetBytes', this.budget],
    ] as const) {
      if (!Number.isFinite(value) || value < 0)
        throw new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          `${name} must be a number of bytes ≥ 0, got ${String(value)}`,
        );
    }
  }

  /**
   * The record to write for `record`: each inline image larger than `inlineMaxBytes`
   * written once to `images/<sha256>.<ext>` (the file fsync'd and renamed into place, the
   * folder fsync'd) and replaced by a reference; images past the episode's budget replaced
   * by `omitted` references. References already in the record are kept as they are. The
   * record given is not changed.
   * @throws PaddockError STORE_FAILED when a file cannot be written (a full disk) or the
   *   run folder's `images` is not a plain folder.
   */
  record(record: RecordedEpisode): RecordedImages {
    const decided = new Map<string, RecordedImage>();
    const byHash = new Map<string, RecordedImage>();
    const written: string[] = [];
    let spent = 0;
    /** Set once an image did not fit: every later new image is omitted too. */
    let exhausted = false;
    let changed = false;
    const convert = (image: RecordedImage): RecordedImage => {
      if (isImageFileRef(image)) return image;
      const known = decided.get(image.dataBase64);
      if (known && known.mimeType === image.mimeType) {
        if (known !== image) changed = true;
        return known;
      }
      const bytes = Buffer.from(image.dataBase64, 'base64');
      const sha256 = sha256Hex(bytes);
      const extension = imageExtension(image.mimeType);
      let out: RecordedImage;
      const same = byHash.get(`${sha256}.${extension}`);
      if (same) out = same;
      else if (exhausted || spent + bytes.length > this.budget) {
        exhausted = true;
        out = { mimeType: image.mimeType, bytes: bytes.length, sha256, omitted: OVER_BUDGET };
      } else {
        spent += bytes.length;
        if (bytes.length <= this.inlineMaxBytes) out = image;
        else {
          const file = `${IMAGES_DIR}/${sha256}.${extension}`;
          if (this.ensureFile(file, sha256, bytes)) written.push(file);
          out = { mimeType: image.mimeType, file, bytes: bytes.length, sha256 };
        }
      }
      byHash.set(`${sha256}.${extension}`, out);
      if (!decided.has(image.dataBase64)) decided.set(image.dataBase64, out);
      if (out !== image) changed = true;
      return out;
    };
    // Tolerant of partial records (the store writes what it is given; readers default the same way).
    const hasImages = (list: readonly RecordedImage[] | undefined): list is readonly RecordedImage[] =>
      Array.isArray(list) && list.length > 0;
    const messages = Array.isArray(record.messages)
      ? record.messages.map((message) =>
          'images' in message && hasImages(message.images)
            ? { ...message, images: message.images.map(convert) }
            : message,
        )
      : record.messages;
    const turns = Array.isArray(record.turns)
      ? record.turns.map((turn) =>
          Array.isArray(turn.toolResults) && turn.toolResults.some((result) => hasImages(result.images))
            ? {
                ...turn,
                toolResults: turn.toolResults.map((result) =>
                  hasImages(result.images) ? { ...result, images: result.images.map(convert) } : result,
                ),
              }
            : turn,
        )
      : record.turns;
    if (written.length > 0) this.syncFolder();
    return { record: changed ? { ...record, messages, turns } : record, written };
  }

  /**
   * Makes `file` hold `bytes`: a regular file already there with those bytes is kept;
   * anything else at that name (another content, a symbolic link, a folder) is replaced
   * by a new file written beside it (O_EXCL, so never through a planted link) and renamed
   * over it. Returns true when it wrote the file.
   */
  private ensureFile(file: string, sha256: string, bytes: Buffer): boolean {
    if (this.present.has(file)) return false;
    const dir = join(this.runDir, IMAGES_DIR);
    const path = join(this.runDir, file);
    try {
      const folder = lstatOrNone(dir);
      if (folder === undefined) mkdirSync(dir);
      else if (!folder.isDirectory()) {
        throw refused(
          `${dir} is ${folder.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}: ` +
            'the store keeps images only in a plain images/ folder of the run',
          { runDir: this.runDir },
        );
      }
      const existing = lstatOrNone(path);
      if (existing?.isFile()) {
        let current: Buffer | undefined;
        try {
          current = readRegularFile(path);
        } catch {
          current = undefined; // replaced (swapped for a link meanwhile): written anew below
        }
        if (current !== undefined && sha256Hex(current) === sha256) {
          this.present.add(file);
          return false;
        }
      } else if (existing?.isDirectory()) {
        rmSync(path, { recursive: true, force: true });
      }
      // A fresh temporary name (a link planted there is never followed), renamed over the
      // name: rename replaces whatever is there (a link itself, not its target).
      writeFileAtomic(path, bytes);
      this.present.add(file);
      return true;
    } catch (error) {
      if (error instanceof PaddockError) throw error;
      const code = (error as { code?: unknown }).code;
      throw refused(
        `writing image ${file} in ${this.runDir} failed: ${
          code === 'ENOSPC' ? 'no space left on device (ENOSPC)' : describeError(error)
        }`,
        { runDir: this.runDir, file, ...(typeof code === 'string' ? { errno: code } : {}) },
        error,
      );
    }
  }

  /** Flushes the images folder's entries, so that files a record names are on disk before it. */
  private syncFolder(): void {
    let fd: number | undefined;
    try {
      fd = openSync(join(this.runDir, IMAGES_DIR), 'r');
      fsyncSync(fd);
    } catch {
      // Not every system can fsync a folder; the files themselves were fsync'd.
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}
