/**
 * `browser.sandbox`: pages served by a server inside a Docker sandbox with no network,
 * reached by a real Chromium through the relay on the host (one process in the sandbox per
 * connection). Checks the page, actions, a scorer, parallel requests, that closing leaves
 * no relay process in the container and no port on the host, a server that never answers,
 * and a task without a sandbox.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../../harness/index.ts';
import {
  BrowserToolProvider,
  openSandboxPort,
  type BrowserSession,
  type BrowserTaskExtensionInput,
  type SpawningSandbox,
} from '../../../sandboxes/browser/index.ts';
import { DockerSandboxProvider, reapContainers } from '../../../sandboxes/docker/index.ts';
import { baseSpec, ensureBaseImage, testRunId } from '../docker/helpers.ts';
import { call, refOf, webTask } from './helpers.ts';

const runId = testRunId('browser-sandbox');
const provider = new BrowserToolProvider();
const signal = new AbortController().signal;
let sandbox: SpawningSandbox;
let episode = 0;

const INDEX = `<!doctype html>
<title>Sandbox notes</title>
<h1>Notes served from the sandbox</h1>
<label>Note <input id="note"></label>
<button id="save" onclick="localStorage.setItem('note', document.getElementById('note').value);
  document.getElementById('status').textContent = 'Saved: ' + document.getElementById('note').value">Save</button>
<p role="status" id="status">Nothing saved</p>
<div id="images"></div>
<p id="fetched">not fetched</p>
<script>
  // Several requests at once: images and fetches, each on the relay.
  for (let i = 0; i < 6; i++) {
    const img = document.createElement('img');
    img.src = '/dot' + i + '.svg';
    img.alt = 'dot ' + i;
    img.onload = () => img.setAttribute('data-loaded', 'yes');
    document.getElementById('images').appendChild(img);
  }
  Promise.all([1, 2, 3, 4].map((n) => fetch('/data' + n + '.json').then((r) => r.json()))).then((all) => {
    document.getElementById('fetched').textContent = 'fetched ' + all.map((d) => d.n).join(',');
  });
</script>
`;

/** A tiny image, six copies of which the page loads at once. */
const SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><circle cx="4" cy="4" r="4"/></svg>';

function sandboxTask(id: string, section: BrowserTaskExtensionInput['sandbox'], extra: object = {}) {
  return webTask(id, { sandbox: section, start: '/index.html', ...extra });
}

async function open(
  section: BrowserTaskExtensionInput['sandbox'],
  extra: object = {},
  withSandbox: Sandbox | null = sandbox,
): Promise<BrowserSession> {
  const id = `sandbox-${++episode}`;
  const session = await provider.open(sandboxTask(id, section, extra), {
    labels: { runId, episodeId: id },
    signal,
    ...(withSandbox ? { sandbox: withSandbox } : {}),
  });
  if (!session) throw new Error('no session');
  return session;
}

/** Relay processes (bash running the /dev/tcp program, and its cats) in the container. */
async function relayProcesses(): Promise<string[]> {
  const result = await sandbox.exec('ps -eo pid,args');
  return result.stdout.split('\n').filter((line) => line.includes('/dev/tcp') || /\bcat\b/.test(line));
}

async function portIsClosed(origin: string): Promise<boolean> {
  const { port } = new URL(origin);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

const SERVE = {
  port: 8000,
  command: 'exec python3 -m http.server 8000 --bind 127.0.0.1 --directory /srv/site',
};

beforeAll(async () => {
  await ensureBaseImage();
  const started = await new DockerSandboxProvider().start(baseSpec(), {
    labels: { runId, episodeId: 'web' },
  });
  if (!started.spawn) throw new Error('the Docker sandbox cannot spawn');
  sandbox = started;
  await sandbox.writeFile('/srv/site/index.html', INDEX);
  for (let i = 0; i < 6; i++) await sandbox.writeFile(`/srv/site/dot${i}.svg`, SVG);
  for (let n = 1; n <= 4; n++) await sandbox.writeFile(`/srv/site/data${n}.json`, JSON.stringify({ n }));
});

afterAll(async () => {
  await provider.close();
  await sandbox?.close();
  await reapContainers({ runId });
});

describe('browser.sandbox', () => {
  it('shows a page served in the sandbox; actions, parallel requests and the scorer work; closing leaves nothing', async () => {
    const session = await open(SERVE, {
      score: { expression: "() => localStorage.getItem('note') === 'relayed'" },
    });
    let origin: string;
    try {
      const first = (await session.initialObservation({ signal })).text;
      expect(first).toContain('Title: Sandbox notes');
      expect(first).toContain('heading "Notes served from the sandbox"');
      origin = new URL(/URL: (\S+)/.exec(first)![1]!).origin;
      expect(origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await session.score({ signal })).toEqual({ browser: 0 });

      const waited = await call(session, 'browser_wait_for', { text: 'fetched 1,2,3,4' });
      expect(waited.isError).toBeUndefined();
      const loaded = await call(session, 'browser_wait_for', {
        selector: 'img[data-loaded="yes"][alt="dot 5"]',
      });
      expect(loaded.isError).toBeUndefined();

      const filled = await call(session, 'browser_fill', {
        ref: refOf(waited.text, 'textbox "Note"'),
        text: 'relayed',
      });
      expect(filled.isError).toBeUndefined();
      const clicked = await call(session, 'browser_click', { selector: '#save' });
      expect(clicked.text).toContain('Saved: relayed');
      expect(await session.score({ signal })).toEqual({ browser: 1 });
      // The server in the sandbox served every request through the relay.
      expect((await relayProcesses()).length).toBeLessThanOrEqual(12);
    } finally {
      await session.close();
    }
    expect(await relayProcesses()).toEqual([]);
    expect(await portIsClosed(origin)).toBe(true);
    // The server command was killed with the session; the relays left no pid files.
    expect((await sandbox.exec('ps -eo args | grep -c "[h]ttp.server" || true')).stdout.trim()).toBe('0');
    const left = (
      await sandbox.exec(
        'for f in /tmp/.paddock-spawn-*; do [ -f "$f" ] && echo "$f $(cat $f)" && ps -ef; done; true',
      )
    ).stdout;
    expect(left).toBe('');
  });

  it('reaches a server the sandbox already runs (no command)', async () => {
    const server = await sandbox.spawn('exec python3 -m http.server 8001 --directory /srv/site');
    try {
      const session = await open({ port: 8001 });
      try {
        expect((await session.initialObservation({ signal })).text).toContain('Title: Sandbox notes');
      } finally {
        await session.close();
      }
      expect(await relayProcesses()).toEqual([]);
    } finally {
      await server.kill();
    }
  });

  it('relays a large answer whole, and many connections one after another', async () => {
    await sandbox.exec('head -c 3000000 /dev/urandom | base64 -w 0 > /srv/big.txt');
    const relay = await openSandboxPort(sandbox, 8002);
    const server = await sandbox.spawn('exec python3 -m http.server 8002 --bind 127.0.0.1 --directory /srv');
    try {
      const expected = (await sandbox.exec('wc -c < /srv/big.txt')).stdout.trim();
      let response: Response | undefined;
      for (let attempt = 0; attempt < 100 && !response; attempt++) {
        response = await fetch(`${relay.origin}/big.txt`).catch(async () => {
          await new Promise((resolve) => setTimeout(resolve, 50));
          return undefined;
        });
      }
      expect(String((await response!.arrayBuffer()).byteLength)).toBe(expected);
      const statuses = await Promise.all(
        Array.from({ length: 8 }, () => fetch(`${relay.origin}/missing`).then((r) => r.status)),
      );
      expect(statuses).toEqual(Array(8).fill(404));
    } finally {
      await relay.close();
      await server.kill();
    }
    expect(relay.activeProcesses()).toBe(0);
    expect(await relayProcesses()).toEqual([]);
  });

  it('fails with SANDBOX_START_FAILED within the ready timeout when nothing answers', async () => {
    const started = Date.now();
    const error = await open({ port: 8003, command: 'sleep 600', ready_timeout_sec: 1.5 }).catch(
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    expect(error).toMatchObject({ code: 'SANDBOX_START_FAILED', retryable: true });
    expect((error as Error).message).toMatch(/sleep 600, port 8003\) did not answer \/ within 1500 ms/);
    expect((error as Error).message).toContain('Connection refused');
    expect(elapsed).toBeLessThan(6_000);
    expect(await relayProcesses()).toEqual([]);
    expect((await sandbox.exec('ps -eo args | grep -c "^sleep 600" || true')).stdout.trim()).toBe('0');
  });

  it('fails at once with the output when the command exits early', async () => {
    const error = await open({ port: 8004, command: 'echo no such server >&2; exit 3' }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'SANDBOX_START_FAILED', retryable: true });
    expect((error as Error).message).toMatch(/exited with 3 before answering[\s\S]*no such server/);
  });

  it('refuses a task without a sandbox with CONFIG_INVALID', async () => {
    const error = await open(SERVE, {}, null).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', retryable: false });
    expect((error as Error).message).toMatch(
      /task sandbox-\d+: browser\.sandbox needs the task's Docker sandbox \(the task has environment: false\)/,
    );
    const withoutSpawn: Sandbox = {
      id: sandbox.id,
      workdir: sandbox.workdir,
      exec: (command, options) => sandbox.exec(command, options),
      readFile: (file) => sandbox.readFile(file),
      writeFile: (file, data) => sandbox.writeFile(file, data),
      upload: (from, to) => sandbox.upload(from, to),
      close: async () => undefined,
    };
    await expect(open(SERVE, {}, withoutSpawn)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
