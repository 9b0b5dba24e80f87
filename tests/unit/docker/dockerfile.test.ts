/**
 * Image references, the image map and FROM rewriting (pure, no engine).
 */
import { describe, expect, it } from 'vitest';
import {
  imageNotFoundMessage,
  lookupImageMap,
  normalizeImageRef,
  parseFromLines,
  parseImageMap,
  rewriteDockerfile,
} from '../../../sandboxes/docker/dockerfile.ts';
import { effectiveImageMap } from '../../../sandboxes/docker/images.ts';

describe('parseImageMap', () => {
  it('reads comma-separated registry=local pairs, ignoring blanks', () => {
    expect(
      parseImageMap('ubuntu:24.04=paddock/base:bookworm, python:3.12-slim=paddock/base:bookworm,'),
    ).toEqual({
      'ubuntu:24.04': 'paddock/base:bookworm',
      'python:3.12-slim': 'paddock/base:bookworm',
    });
  });

  it('refuses an entry without "=" with CONFIG_INVALID naming it', () => {
    expect(() => parseImageMap('ubuntu:24.04')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => parseImageMap('a=b,=c')).toThrow(/"=c"/);
  });
});

describe('effectiveImageMap', () => {
  it('merges PADDOCK_IMAGE_MAP under the explicit map', () => {
    const env = { PADDOCK_IMAGE_MAP: 'a:1=x,b:1=y' };
    expect(effectiveImageMap({ 'b:1': 'z' }, env)).toEqual({ 'a:1': 'x', 'b:1': 'z' });
  });
});

describe('image references', () => {
  it('normalises docker.io, library/ and a missing tag', () => {
    expect(normalizeImageRef('docker.io/library/ubuntu')).toBe('ubuntu:latest');
    expect(normalizeImageRef('ubuntu:24.04')).toBe('ubuntu:24.04');
    expect(normalizeImageRef('localhost:5000/team/tool')).toBe('localhost:5000/team/tool:latest');
  });

  it('finds a substitute under any spelling of the same image, and by name for a digest', () => {
    const map = { 'ubuntu:latest': 'local/u', 'python:3.12-slim': 'local/p' };
    expect(lookupImageMap(map, 'docker.io/library/ubuntu')).toBe('local/u');
    expect(lookupImageMap(map, 'python:3.12-slim@sha256:abc')).toBe('local/p');
    expect(lookupImageMap(map, 'python:3.11')).toBeUndefined();
  });
});

describe('parseFromLines', () => {
  it('resolves ARG defaults, stage names, --platform flags and scratch', () => {
    const dockerfile = [
      'ARG BASE=ubuntu',
      'ARG TAG="24.04"',
      'FROM --platform=linux/amd64 ${BASE}:$TAG AS build',
      'RUN make',
      'FROM build AS test',
      'from scratch',
      'FROM $UNKNOWN',
    ].join('\n');
    expect(parseFromLines(dockerfile)).toEqual([
      { line: 2, written: '${BASE}:$TAG', image: 'ubuntu:24.04', stage: 'build', internal: false },
      { line: 4, written: 'build', image: 'build', stage: 'test', internal: true },
      { line: 5, written: 'scratch', image: 'scratch', internal: true },
      { line: 6, written: '$UNKNOWN', image: undefined, internal: false },
    ]);
  });
});

describe('rewriteDockerfile', () => {
  it('replaces mapped FROM images and keeps flags, stage names and other lines', () => {
    const dockerfile =
      'FROM --platform=linux/amd64 ubuntu:24.04 AS base\nRUN echo hi\nFROM base\nFROM python:3.12-slim\n';
    const result = rewriteDockerfile(dockerfile, (image) =>
      image === 'ubuntu:24.04' ? 'paddock/base:bookworm' : undefined,
    );
    expect(result.dockerfile).toBe(
      'FROM --platform=linux/amd64 paddock/base:bookworm AS base\nRUN echo hi\nFROM base\nFROM python:3.12-slim\n',
    );
    expect(result.applied).toEqual({ 'ubuntu:24.04': 'paddock/base:bookworm' });
    expect(result.images).toEqual(['paddock/base:bookworm', 'python:3.12-slim']);
  });

  it('rewrites an ARG-named base image to the literal substitute', () => {
    const result = rewriteDockerfile('ARG IMG=ubuntu:24.04\nFROM $IMG\n', () => 'paddock/base:bookworm');
    expect(result.dockerfile).toBe('ARG IMG=ubuntu:24.04\nFROM paddock/base:bookworm\n');
  });

  it('leaves a Dockerfile without substitutions unchanged', () => {
    const dockerfile = 'FROM paddock/base:bookworm\r\nRUN true\r\n';
    expect(rewriteDockerfile(dockerfile, () => undefined).dockerfile).toBe(dockerfile);
  });
});

describe('imageNotFoundMessage', () => {
  it('names the image and both ways to map it', () => {
    const message = imageNotFoundMessage('ubuntu:24.04');
    expect(message).toContain('"ubuntu:24.04"');
    expect(message).toContain('--image-map ubuntu:24.04=paddock/base:bookworm');
    expect(message).toContain('PADDOCK_IMAGE_MAP');
  });
});
