/**
 * Images for tasks: a named image must exist locally or be mapped to a local one; a
 * Dockerfile build is cached by a content hash of its context.
 */
import { basename, dirname, isAbsolute, join, relative, resolve as resolvePath, sep } from 'node:path';
import { readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import { ERROR_CODES, PaddockError, throwIfAborted } from '../../harness/errors.ts';
import type { EnvironmentSpec } from '../../harness/task.ts';
import { followProgress, inspectImageId } from './base-image.ts';
import type { EngineProgressMessage } from './base-image.ts';
import { hashContext, listContext, packContext } from './build-context.ts';
import {
  IMAGE_MAP_ENV,
  imageNotFoundMessage,
  lookupImageMap,
  parseImageMap,
  rewriteDockerfile,
} from './dockerfile.ts';
import type { ImageMap } from './dockerfile.ts';
import { engineUnavailableError, isEngineUnreachable, resolveEngineEndpoint } from './engine.ts';

/** Repository of images built from task Dockerfiles; the tag is the context hash. */
export const TASK_IMAGE_REPO = 'paddock-task';

/** Lines of build output kept for the error of a failed build. */
const BUILD_LOG_TAIL_LINES = 40;

/**
 * The image map in effect: `PADDOCK_IMAGE_MAP` from the environment, overridden entry
 * by entry by `explicit` (the provider's `imageMap` option, i.e. `--image-map`).
 * @throws PaddockError CONFIG_INVALID when the variable is malformed.
 */
export function effectiveImageMap(explicit: ImageMap = {}, env: NodeJS.ProcessEnv = process.env): ImageMap {
  const fromEnv = env[IMAGE_MAP_ENV] ? parseImageMap(env[IMAGE_MAP_ENV]) : {};
  return { ...fromEnv, ...explicit };
}

/** How an image name was made available. */
export interface ResolvedImage {
  /** The local image to run. */
  image: string;
  /** The image id (`sha256:…`). */
  id: string;
  /** The name the task asked for. */
  requested: string;
  /** True when `image` came from the image map. */
  mapped: boolean;
}

/**
 * Finds a local image for `name`: itself when present, else its image-map substitute.
 * @throws PaddockError IMAGE_NOT_FOUND naming the image and the `--image-map` /
 *   `PADDOCK_IMAGE_MAP` option; ENGINE_UNAVAILABLE.
 */
export async function resolveLocalImage(
  docker: Docker,
  name: string,
  imageMap: ImageMap,
): Promise<ResolvedImage> {
  const id = await inspectImageId(docker, name);
  if (id) return { image: name, id, requested: name, mapped: false };
  const substitute = lookupImageMap(imageMap, name);
  if (substitute !== undefined) {
    const mappedId = await inspectImageId(docker, substitute);
    if (mappedId) return { image: substitute, id: mappedId, requested: name, mapped: true };
    throw new PaddockError(ERROR_CODES.IMAGE_NOT_FOUND, imageNotFoundMessage(name, substitute), {
      details: { image: name, mappedTo: substitute },
    });
  }
  throw new PaddockError(ERROR_CODES.IMAGE_NOT_FOUND, imageNotFoundMessage(name), {
    details: { image: name },
  });
}

/** What `buildTaskImage` did. */
export interface BuildResult {
  /** `paddock-task:<hash>`. */
  image: string;
  /** The full content hash. */
  hash: string;
  /** False when the tagged image already existed (cache hit). */
  built: boolean;
  /** FROM substitutions applied, `written → local`. */
  applied: ImageMap;
}

const buildsInFlight = new Map<string, Promise<BuildResult>>();

/** Longest Dockerfile instruction shown in a progress line; longer ones are cut with `…`. */
const PROGRESS_INSTRUCTION_CHARS = 72;

/**
 * What a build context is called in progress lines: its path from the working folder, or
 * the task folder's when the context is a task's `environment/`.
 */
export function describeBuildContext(contextDir: string, cwd = process.cwd()): string {
  const folder = basename(contextDir) === 'environment' ? dirname(contextDir) : contextDir;
  const path = relative(cwd, folder);
  return path === '' ? '.' : path.startsWith('..') || isAbsolute(path) ? folder : path.split(sep).join('/');
}

/**
 * A progress line from one line of the engine's build output: `Step 2/3 : COPY app/ /app/`
 * (the classic builder's step header) gives `building image for <what>: step 2/3 COPY app/
 * /app/`; any other line gives undefined.
 */
export function buildStepLine(what: string, output: string): string | undefined {
  const step = /^Step (\d+)\/(\d+) : (.*)$/.exec(output.trim());
  if (!step) return undefined;
  const instruction = step[3]!.replace(/\s+/g, ' ');
  const shown =
    instruction.length > PROGRESS_INSTRUCTION_CHARS
      ? `${instruction.slice(0, PROGRESS_INSTRUCTION_CHARS - 1)}…`
      : instruction;
  return `building image for ${what}: step ${step[1]}/${step[2]} ${shown}`;
}

/** Options of `buildTaskImage`. */
export interface BuildOptions {
  imageMap: ImageMap;
  /** Called with each line of build output. */
  onLog?: (line: string) => void;
  /**
   * Called with the build's progress for a person, one line per call: that it starts,
   * each Dockerfile step (`building image for tasks/examples/fix-bug: step 2/3 COPY app/
   * /app/`) and that it ended. Nothing is said for a cached image. @default none
   */
  onProgress?: (line: string) => void;
  /** Aborting stops the build (the engine may finish a step) and rejects with ABORTED. */
  signal?: AbortSignal;
}

/**
 * Builds `build` (context folder + Dockerfile) into `paddock-task:<hash>`, where the
 * hash covers the context's files (after `.dockerignore`), the Dockerfile after its
 * `FROM` lines went through the image map, and the ids of the base images. Skips the
 * build when that tag exists; concurrent calls for one hash share one build.
 * @throws PaddockError IMAGE_NOT_FOUND (a `FROM` image missing and unmapped, checked
 *   before building), IMAGE_BUILD_FAILED (with the tail of the build log; also for an
 *   unreadable context), ENGINE_UNAVAILABLE, ABORTED.
 */
export async function buildTaskImage(
  docker: Docker,
  build: NonNullable<EnvironmentSpec['build']>,
  options: BuildOptions,
): Promise<BuildResult> {
  throwIfAborted(options.signal);
  const contextDir = resolvePath(build.contextDir);
  const dockerfileHost = isAbsolute(build.dockerfile) ? build.dockerfile : join(contextDir, build.dockerfile);
  const relDockerfile = relative(contextDir, dockerfileHost).split(sep).join('/');
  const inside = !relDockerfile.startsWith('../') && relDockerfile !== '..' && !isAbsolute(relDockerfile);
  // A Dockerfile outside the context travels under a name of its own.
  const dockerfileInTar = inside ? relDockerfile : '.paddock.Dockerfile';

  let original: string;
  let entries: Awaited<ReturnType<typeof listContext>>;
  try {
    original = await readFile(dockerfileHost, 'utf8');
    entries = await listContext(contextDir, [dockerfileInTar]);
  } catch (error) {
    throw new PaddockError(
      ERROR_CODES.IMAGE_BUILD_FAILED,
      `cannot read the build context ${contextDir} (Dockerfile ${build.dockerfile}): ${(error as Error).message}`,
      { cause: error, details: { contextDir, dockerfile: build.dockerfile } },
    );
  }

  // Resolve every external FROM image: present locally, else through the map, else an error now.
  const resolved = new Map<string, ResolvedImage>();
  const probe = rewriteDockerfile(original, () => undefined);
  for (const image of probe.images) {
    try {
      resolved.set(image, await resolveLocalImage(docker, image, options.imageMap));
    } catch (error) {
      if (error instanceof PaddockError && error.code === ERROR_CODES.IMAGE_NOT_FOUND) {
        throw new PaddockError(
          ERROR_CODES.IMAGE_NOT_FOUND,
          `${build.dockerfile} in ${contextDir} starts FROM ${image}: ${error.message}`,
          { details: { ...error.details, dockerfile: dockerfileHost } },
        );
      }
      throw error;
    }
  }
  const rewritten = rewriteDockerfile(original, (image) => {
    const found = resolved.get(image);
    return found?.mapped ? found.image : undefined;
  });
  const baseIds = rewritten.images.map((image) => `${image}=${resolved.get(image)?.id ?? ''}`);
  let hash: string;
  try {
    hash = await hashContext(entries, [dockerfileInTar, rewritten.dockerfile, ...baseIds]);
  } catch (error) {
    throw new PaddockError(ERROR_CODES.IMAGE_BUILD_FAILED, `cannot read the build context ${contextDir}`, {
      cause: error,
    });
  }
  const tag = `${TASK_IMAGE_REPO}:${hash.slice(0, 20)}`;

  const running = buildsInFlight.get(tag);
  if (running) return running;
  const promise = (async (): Promise<BuildResult> => {
    if (await inspectImageId(docker, tag))
      return { image: tag, hash, built: false, applied: rewritten.applied };
    const tar = packContext(entries, new Map([[dockerfileInTar, rewritten.dockerfile]]));
    await runBuild(
      docker,
      tar as unknown as NodeJS.ReadableStream,
      tag,
      dockerfileInTar,
      { contextDir, hash },
      options,
    );
    return { image: tag, hash, built: true, applied: rewritten.applied };
  })().finally(() => buildsInFlight.delete(tag));
  buildsInFlight.set(tag, promise);
  return promise;
}

async function runBuild(
  docker: Docker,
  tar: NodeJS.ReadableStream,
  tag: string,
  dockerfile: string,
  info: { contextDir: string; hash: string },
  options: BuildOptions,
): Promise<void> {
  const tail: string[] = [];
  const what = describeBuildContext(info.contextDir);
  const started = Date.now();
  const log = (text: string) => {
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > BUILD_LOG_TAIL_LINES) tail.shift();
      options.onLog?.(line);
      const step = options.onProgress && buildStepLine(what, line);
      if (step) options.onProgress?.(step);
    }
  };
  options.onProgress?.(`building image for ${what} (${tag})`);
  const fail = (reason: string, cause?: unknown) =>
    new PaddockError(
      ERROR_CODES.IMAGE_BUILD_FAILED,
      `building ${info.contextDir} failed: ${reason}\n--- last lines of the build log ---\n${tail.join('\n')}`,
      { cause, details: { contextDir: info.contextDir, log: tail.join('\n') } },
    );
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.buildImage(tar, {
      t: tag,
      dockerfile,
      rm: true,
      forcerm: true,
      labels: { 'paddock.context-hash': info.hash },
      ...(options.signal ? { abortSignal: options.signal } : {}),
    });
  } catch (error) {
    throwIfAborted(options.signal);
    if (isEngineUnreachable(error)) throw engineUnavailableError(resolveEngineEndpoint(), error);
    throw fail((error as Error).message, error);
  }
  let messages: EngineProgressMessage[];
  try {
    messages = await followProgress(docker, stream, (message) => {
      if (message.stream) log(message.stream);
      if (message.status) log(message.status);
      if (message.error) log(message.error);
    });
  } catch (error) {
    throwIfAborted(options.signal);
    throw fail((error as Error).message, error);
  }
  throwIfAborted(options.signal);
  const failure = messages.find((message) => message.error || message.errorDetail?.message);
  if (failure) throw fail(failure.error ?? failure.errorDetail?.message ?? 'unknown error');
  if (!(await inspectImageId(docker, tag))) throw fail(`the build finished without an image tagged ${tag}`);
  options.onProgress?.(`built image for ${what} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
