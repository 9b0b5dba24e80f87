/**
 * Pure helpers for images: image references, the image map (registry image → local
 * image) and the rewriting of a Dockerfile's `FROM` lines through it.
 */
import { ERROR_CODES, PaddockError } from '../../harness/errors.ts';

/** Substitutions `registry image → local image`, e.g. `{ 'ubuntu:24.04': 'paddock/base:bookworm' }`. */
export type ImageMap = Record<string, string>;

/** The environment variable that holds an image map: `a=b,c=d`. */
export const IMAGE_MAP_ENV = 'PADDOCK_IMAGE_MAP';

/**
 * Parses `from=to` pairs separated by commas (or newlines); blanks are ignored.
 * @throws PaddockError CONFIG_INVALID naming the bad entry and `source`.
 */
export function parseImageMap(text: string, source = IMAGE_MAP_ENV): ImageMap {
  const map: ImageMap = {};
  for (const raw of text.split(/[,\n]/)) {
    const entry = raw.trim();
    if (!entry) continue;
    const eq = entry.indexOf('=');
    const from = eq < 0 ? '' : entry.slice(0, eq).trim();
    const to = eq < 0 ? '' : entry.slice(eq + 1).trim();
    if (!from || !to || /\s/.test(from) || /\s/.test(to)) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${source}: "${entry}" is not an image substitution; expected registry-image=local-image, e.g. ubuntu:24.04=paddock/base:bookworm`,
        { details: { source, entry } },
      );
    }
    map[from] = to;
  }
  return map;
}

/**
 * A canonical form of an image reference for comparing map keys: `docker.io/` and
 * `library/` dropped, `:latest` added when there is neither tag nor digest.
 * `docker.io/library/ubuntu` → `ubuntu:latest`; `python:3.12-slim` unchanged.
 */
export function normalizeImageRef(ref: string): string {
  let name = ref.trim();
  name = name.replace(/^(?:index\.)?docker\.io\//, '').replace(/^library\//, '');
  if (name.includes('@')) return name;
  const lastSlash = name.lastIndexOf('/');
  const lastColon = name.lastIndexOf(':');
  return lastColon > lastSlash ? name : `${name}:latest`;
}

/** The substitute for `ref` in `map`, comparing canonical forms (a digest is also tried without). */
export function lookupImageMap(map: ImageMap, ref: string): string | undefined {
  const wanted = normalizeImageRef(ref);
  const withoutDigest = ref.includes('@') ? normalizeImageRef(ref.slice(0, ref.indexOf('@'))) : undefined;
  let fallback: string | undefined;
  for (const [from, to] of Object.entries(map)) {
    const key = normalizeImageRef(from);
    if (key === wanted) return to;
    if (withoutDigest !== undefined && key === withoutDigest) fallback = to;
  }
  return fallback;
}

/** One `FROM` instruction of a Dockerfile. */
export interface FromLine {
  /** Index of the line in the Dockerfile (0-based). */
  line: number;
  /** The image as written (`$BASE`, `ubuntu:24.04`…). */
  written: string;
  /** The image after substituting `ARG`s declared before the first FROM; undefined when unresolved. */
  image: string | undefined;
  /** The stage's `AS` name, if any. */
  stage?: string;
  /** True when the image names an earlier stage (or `scratch`): no image is needed. */
  internal: boolean;
}

const FROM_RE = /^(\s*FROM\s+)((?:--\S+\s+)*)(\S+)(.*)$/i;
const ARG_RE = /^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?\s*$/i;

/** Finds the `FROM` lines of a Dockerfile, resolving global `ARG` defaults and stage names. */
export function parseFromLines(dockerfile: string): FromLine[] {
  const lines = dockerfile.split('\n');
  const args = new Map<string, string>();
  const stages = new Set<string>();
  const result: FromLine[] = [];
  let seenFrom = false;
  lines.forEach((text, index) => {
    const from = FROM_RE.exec(text.replace(/\r$/, ''));
    if (from) {
      seenFrom = true;
      const written = from[3] ?? '';
      const image = substituteArgs(written, args);
      const stage = /\s+AS\s+(\S+)/i.exec(from[4] ?? '')?.[1];
      const internal =
        image !== undefined && (image.toLowerCase() === 'scratch' || stages.has(image.toLowerCase()));
      result.push({ line: index, written, image, ...(stage ? { stage } : {}), internal });
      if (stage) stages.add(stage.toLowerCase());
      return;
    }
    const arg = seenFrom ? null : ARG_RE.exec(text);
    if (arg?.[1] && arg[2] !== undefined) args.set(arg[1], unquote(arg[2].trim()));
  });
  return result;
}

function unquote(value: string): string {
  if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) {
    return value.slice(1, -1);
  }
  return value;
}

/** `$X`, `${X}`, `${X:-d}` → values; undefined when a variable is unknown. */
function substituteArgs(text: string, args: Map<string, string>): string | undefined {
  let unresolved = false;
  const out = text.replace(
    /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (_match, braced: string | undefined, fallback: string | undefined, bare: string | undefined) => {
      const name = braced ?? bare ?? '';
      const value = args.get(name);
      if (value !== undefined && value !== '') return value;
      if (fallback !== undefined) return fallback;
      unresolved = true;
      return '';
    },
  );
  return unresolved ? undefined : out;
}

/** What `rewriteDockerfile` did. */
export interface RewriteResult {
  /** The Dockerfile with mapped `FROM` images replaced. */
  dockerfile: string;
  /** Every external image of the Dockerfile as finally used (after substitution). */
  images: string[];
  /** Substitutions applied, `written → local`. */
  applied: ImageMap;
}

/**
 * Replaces the image of each `FROM` line for which `substitute` returns a local image
 * (the rest of the line, `--platform` flags and `AS name` included, is kept). Lines
 * naming an earlier stage, `scratch`, or an image with unresolved variables are left.
 */
export function rewriteDockerfile(
  dockerfile: string,
  substitute: (image: string) => string | undefined,
): RewriteResult {
  const lines = dockerfile.split('\n');
  const images: string[] = [];
  const applied: ImageMap = {};
  for (const from of parseFromLines(dockerfile)) {
    if (from.internal || from.image === undefined) continue;
    const replacement = substitute(from.image);
    const text = lines[from.line] ?? '';
    if (replacement !== undefined && replacement !== from.image) {
      const match = FROM_RE.exec(text.replace(/\r$/, ''));
      if (match) {
        lines[from.line] = `${match[1]}${match[2]}${replacement}${match[4]}`;
        applied[from.image] = replacement;
      }
      images.push(replacement);
    } else {
      images.push(from.image);
    }
  }
  return { dockerfile: lines.join('\n'), images: [...new Set(images)], applied };
}

/**
 * The message of IMAGE_NOT_FOUND for `image`, telling the user how to substitute a
 * local image (`--image-map` / `PADDOCK_IMAGE_MAP`).
 */
export function imageNotFoundMessage(image: string, mappedTo?: string): string {
  if (mappedTo !== undefined) {
    return (
      `Image "${image}" is mapped to "${mappedTo}", which is not present in the local engine either. ` +
      `Make it first (the base image: \`paddock images bootstrap\`), or change the mapping (--image-map / ${IMAGE_MAP_ENV}).`
    );
  }
  return (
    `Image "${image}" is not present in the local engine, and there is no registry to pull it from. ` +
    `Substitute a local image with --image-map ${image}=paddock/base:bookworm ` +
    `(or ${IMAGE_MAP_ENV}="${image}=paddock/base:bookworm"), or build it locally first.`
  );
}
