/**
 * Reading the engine's address and the base image's mirror from the host's settings
 * (pure, no engine).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_DEBIAN_MIRROR,
  findDebianMirror,
  parseDebianMirror,
  splitTag,
} from '../../../sandboxes/docker/base-image.ts';
import { engineUnavailableError, resolveEngineEndpoint } from '../../../sandboxes/docker/engine.ts';

describe('resolveEngineEndpoint', () => {
  it('uses the local socket when DOCKER_HOST is unset', () => {
    expect(resolveEngineEndpoint({})).toMatchObject({ socketPath: '/var/run/docker.sock' });
  });

  it('reads unix:// and tcp:// addresses', () => {
    expect(resolveEngineEndpoint({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' })).toMatchObject({
      socketPath: '/run/user/1000/docker.sock',
    });
    expect(resolveEngineEndpoint({ DOCKER_HOST: 'tcp://10.0.0.5:2375' }).options).toEqual({
      host: '10.0.0.5',
      port: '2375',
      protocol: 'http',
    });
  });

  it('refuses an unsupported scheme with CONFIG_INVALID', () => {
    expect(() => resolveEngineEndpoint({ DOCKER_HOST: 'ssh://me@host' })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });

  it('builds one message that names the address and how to start the engine', () => {
    const error = engineUnavailableError(resolveEngineEndpoint({ DOCKER_HOST: 'unix:///nonexistent.sock' }));
    expect(error.code).toBe('ENGINE_UNAVAILABLE');
    expect(error.message).toBe(
      'The Docker engine at unix:///nonexistent.sock is not running: /nonexistent.sock does not exist. ' +
        'Start it with `bash scripts/setup.sh` (or `sudo dockerd`), or point DOCKER_HOST at a running engine.',
    );
  });
});

describe('Debian mirror', () => {
  it('finds the archive URI in one-line and deb822 sources, skipping security', () => {
    expect(parseDebianMirror('deb [arch=amd64] http://mirror.example/debian/ bookworm main\n')).toBe(
      'http://mirror.example/debian',
    );
    expect(
      parseDebianMirror(
        'Types: deb\nURIs: http://deb.debian.org/debian-security\n\nTypes: deb\nURIs: http://ftp.fr.debian.org/debian\n',
      ),
    ).toBe('http://ftp.fr.debian.org/debian');
    expect(parseDebianMirror('deb https://packages.cloud.google.com/apt cloud-sdk main\n')).toBeUndefined();
  });

  it('reads the apt folder, and falls back to deb.debian.org', async () => {
    const apt = await mkdtemp(join(tmpdir(), 'paddock-apt-unit-'));
    try {
      expect(await findDebianMirror(apt)).toBe(DEFAULT_DEBIAN_MIRROR);
      await mkdir(join(apt, 'sources.list.d'));
      await writeFile(
        join(apt, 'sources.list.d/debian.sources'),
        'Types: deb\nURIs: http://local.mirror/debian\n',
      );
      expect(await findDebianMirror(apt)).toBe('http://local.mirror/debian');
    } finally {
      await rm(apt, { recursive: true, force: true });
    }
  });
});

describe('splitTag', () => {
  it('splits repository and tag, not a registry port', () => {
    expect(splitTag('paddock/base:bookworm')).toEqual(['paddock/base', 'bookworm']);
    expect(splitTag('localhost:5000/base')).toEqual(['localhost:5000/base', 'latest']);
  });
});
