/**
 * Images of exported episodes. A record's image is inline (small ones, runs written before
 * the store kept image files) or a file of its run (`images/<sha256>.<ext>`, see the
 * harness's recorded-images.ts); the export writes each as an OpenAI `image_url` part:
 *
 * - `files` (the default): the image is copied once (named by its SHA-256) into the folder
 *   `<out>.images/` beside the export, and the part's URL is its path relative to the
 *   export's folder (`episodes.parquet.images/<sha256>.png`), as is the row's `images`
 *   column, in the order the parts appear;
 * - `inline`: the URL is a `data:` URL holding the bytes (a self-contained file, as
 *   OpenAI's fine-tuning API takes it).
 *
 * An image whose bytes the record did not keep (over the episode's image budget) becomes
 * a text part saying so: the conversation keeps its place, no image is invented.
 */
import { lstatSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  ERROR_CODES,
  PaddockError,
  imageExtension,
  isImageFileRef,
  readRecordedImage,
  sha256Hex,
  type RecordedImage,
} from '../harness/index.ts';
import { writeFileAtomic } from '../harness/atomic-file.ts';
import type { OpenAIContentPart } from '../harness/openai-format.ts';

/** How the export writes images: copied beside it (`files`) or as `data:` URLs (`inline`). */
export type ExportImageMode = 'files' | 'inline';

/** The text part that stands for an image whose bytes the record did not keep. */
export function omittedImageText(image: { mimeType: string; bytes: number; omitted?: string }): string {
  return `[image ${image.mimeType}, ${image.bytes} bytes, not kept: ${image.omitted ?? 'omitted'}]`;
}

/** The folder beside an export file that holds its images: `<out>.images`. */
export function exportImagesDir(out: string): string {
  return `${out}.images`;
}

/** Turns recorded images into `image_url` parts for one export, writing image files as it goes. */
export class ExportImages {
  private readonly written = new Set<string>();
  private readonly folder: string;
  /** The folder's path relative to the export file's folder, as URLs name it. */
  private readonly prefix: string;
  private folderReady = false;

  constructor(
    readonly mode: ExportImageMode,
    /** The export file (its images go to `<out>.images/`). */
    out: string,
    /** The run folder whose `images/` the records' references name; undefined for records of no store. */
    readonly runDir: string | undefined,
  ) {
    this.folder = exportImagesDir(out);
    // The folder sits beside the file: its URLs are relative to the file's folder.
    this.prefix = `${basename(this.folder)}/`;
  }

  /** The `image_url` part (or the text part of an omitted image) for one image. */
  part(image: RecordedImage): OpenAIContentPart {
    if (isImageFileRef(image) && image.file === undefined)
      return { type: 'text', text: omittedImageText(image) };
    if (this.mode === 'inline') {
      const data = isImageFileRef(image) ? this.bytesOf(image).toString('base64') : image.dataBase64;
      return { type: 'image_url', image_url: { url: `data:${image.mimeType};base64,${data}` } };
    }
    const bytes = isImageFileRef(image) ? undefined : Buffer.from(image.dataBase64, 'base64');
    const sha256 = isImageFileRef(image) ? image.sha256 : sha256Hex(bytes!);
    const name = `${sha256}.${imageExtension(image.mimeType)}`;
    if (!this.written.has(name)) {
      this.write(name, bytes ?? this.bytesOf(image));
      this.written.add(name);
    }
    return { type: 'image_url', image_url: { url: `${this.prefix}${name}` } };
  }

  /** The bytes of a referenced image, read (and checked) from its run folder. */
  private bytesOf(image: RecordedImage): Buffer {
    if (!isImageFileRef(image)) return Buffer.from(image.dataBase64, 'base64');
    if (this.runDir === undefined) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `a record names image file ${image.file ?? '?'} of its run, but the export was given records without ` +
          'their run folder: pass the RunStore, or `runDir`',
      );
    }
    // Refuses a reference that names another file, a link, or bytes that are not the recorded ones.
    const bytes = readRecordedImage(this.runDir, image);
    if (!bytes) throw new PaddockError(ERROR_CODES.STORE_FAILED, `image ${image.file ?? '?'} has no bytes`);
    return bytes;
  }

  /** Writes `<folder>/<name>` whole (a temporary file renamed over it), never through a link planted there. */
  private write(name: string, bytes: Buffer): void {
    if (!this.folderReady) {
      let stat;
      try {
        stat = lstatSync(this.folder);
      } catch {
        stat = undefined;
      }
      if (stat === undefined) mkdirSync(this.folder, { recursive: true });
      else if (!stat.isDirectory())
        throw new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          `${this.folder} (where the export's images go) is ${stat.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}`,
        );
      this.folderReady = true;
    }
    const path = join(this.folder, name);
    writeFileAtomic(path, bytes);
  }
}
