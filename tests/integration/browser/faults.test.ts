/**
 * Faults a web episode must survive, in a real Chromium: a page that never finishes
 * loading, a page that throws, a page that opens windows, requests to forbidden origins,
 * an app that does not start, and a browser killed in the middle of a run.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  runEpisodes,
  type Agent,
  type AgentInput,
  type AgentSession,
  type AssistantTurn,
  type Task,
} from '../../../harness/index.ts';
import {
  BrowserToolProvider,
  serveStaticSite,
  type BrowserSession,
} from '../../../sandboxes/browser/index.ts';
import { browserPids, call, startFixtureServer, webTask } from './helpers.ts';

const provider = new BrowserToolProvider();
let server: Awaited<ReturnType<typeof startFixtureServer>>;
const signal = new AbortController().signal;
let episode = 0;

async function open(task: Task): Promise<BrowserSession> {
  const id = `faults-${++episode}`;
  const session = await provider.open(task, { labels: { runId: 'it-browser', episodeId: id }, signal });
  if (!session) throw new Error('no session');
  return session;
}

/** A loopback port that was free a moment ago and now refuses connections. */
async function listeningThenClosedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function page(name: string, extra: Record<string, unknown> = {}): Task {
  return webTask(`fault-${name}`, { url: `${server.origin}/${name}`, ...extra });
}

beforeAll(async () => {
  server = await startFixtureServer();
});
afterAll(async () => {
  await provider.close();
  await server.close();
});

describe('a page that never finishes loading', () => {
  it('is shown as still loading after the load bound, and actions on it settle within their bound', async () => {
    const started = performance.now();
    const session = await open(page('slow.html', { load_timeout_sec: 1.5, settle_timeout_sec: 1 }));
    try {
      const first = (await session.initialObservation({ signal })).text;
      expect(first).toContain('The page is still loading.');
      expect(first).toContain('button "Poke"');
      expect(performance.now() - started).toBeLessThan(10_000);
      const clickStarted = performance.now();
      const poked = await call(session, 'browser_click', { selector: 'role=button[name="Poke"]' });
      expect(poked.isError).toBeUndefined();
      expect(performance.now() - clickStarted).toBeLessThan(5_000);
    } finally {
      await session.close();
    }
  });

  it('opens a document whose body never ends', async () => {
    const session = await open(page('stream', { load_timeout_sec: 1.5, settle_timeout_sec: 1 }));
    try {
      const first = (await session.initialObservation({ signal })).text;
      expect(first).toContain('heading "Still streaming"');
      expect(first).toContain('The page is still loading.');
    } finally {
      await session.close();
    }
  });
});

describe('a page that throws', () => {
  it("reports the page's errors as events and keeps working", async () => {
    const session = await open(page('throws.html'));
    try {
      expect((await session.initialObservation({ signal })).text).toContain('- page error: boom on load');
      const clicked = await call(session, 'browser_click', { selector: '#go' });
      expect(clicked.isError).toBeUndefined();
      expect(clicked.text).toContain('- page error: boom on click');
      expect(await (await session.page()).evaluate('document.body.dataset.clicked')).toBe('yes');
    } finally {
      await session.close();
    }
  });
});

describe('a page that opens windows', () => {
  it('has its pop-ups closed and reported by default', async () => {
    const session = await open(page('popups.html'));
    try {
      // A window is reported by the observation during which it opened, or a later one.
      let seen = (await session.initialObservation({ signal })).text;
      const output = await call(session, 'browser_click', { selector: '#more' });
      expect(output.text).toContain(`URL: ${server.origin}/popups.html`);
      seen += output.text;
      await expect
        .poll(async () => {
          seen += (await call(session, 'browser_snapshot', {})).text;
          return seen.match(/- blocked a pop-up window/g)?.length;
        })
        .toBe(4);
      const context = (await session.page()).context();
      await expect.poll(() => context.pages().length).toBe(1);
    } finally {
      await session.close();
    }
  });

  it('opens a blank page when the only page closed, and can go to the start again', async () => {
    const session = await open(page('popups.html'));
    try {
      await session.initialObservation({ signal });
      await (await session.page()).close();
      const blank = await call(session, 'browser_snapshot', {});
      expect(blank.text).toContain('the page closed itself: a blank page was opened');
      expect(blank.text).toContain('URL: about:blank');
      const again = await call(session, 'browser_goto', { url: `${server.origin}/popups.html` });
      expect(again.text).toContain(`URL: ${server.origin}/popups.html`);
      expect((await session.page()).isClosed()).toBe(false);
    } finally {
      await session.close();
    }
  });

  it('follows a new window when the task asks, and returns when it closes', async () => {
    const session = await open(page('popups.html', { popups: 'follow' }));
    try {
      // The window the page opens on load is followed.
      let seen = (await session.initialObservation({ signal })).text;
      await expect
        .poll(async () => {
          seen += (await call(session, 'browser_snapshot', {})).text;
          return seen;
        })
        .toContain(`URL: ${server.origin}/storage.html`);
      expect(seen).toContain('a pop-up window opened');
      await (await session.page()).close();
      const back = await call(session, 'browser_snapshot', {});
      expect(back.text).toContain('the page closed: back to the previous page');
      expect(back.text).toContain(`URL: ${server.origin}/popups.html`);
      await call(session, 'browser_click', { selector: 'role=link[name="Help"]' });
      // The new window is shown by the click's observation, or by a later one when it
      // took longer to open than the page took to settle.
      await expect
        .poll(async () => (await call(session, 'browser_snapshot', {})).text, { timeout: 10_000 })
        .toContain(`URL: ${server.origin}/storage.html`);
    } finally {
      await session.close();
    }
  });
});

describe('forbidden origins', () => {
  it('refuses goto to another origin, another port of the same host, and file: URLs', async () => {
    const session = await open(page('forbidden.html'));
    try {
      for (const url of ['http://example.com/', 'http://127.0.0.1:9/', 'file:///etc/passwd']) {
        const output = await call(session, 'browser_goto', { url });
        expect(output.isError, url).toBe(true);
        expect(output.text).toMatch(/^Error: cannot open /);
        expect(output.text).toContain(`URL: ${server.origin}/forbidden.html`);
      }
    } finally {
      await session.close();
    }
  });

  it("blocks the page's own requests to other origins: sub-resources, links and fetches", async () => {
    const session = await open(page('forbidden.html'));
    try {
      expect((await session.initialObservation({ signal })).text).toContain(
        '- blocked a request to http://203.0.113.9 (not an allowed origin)',
      );
      const fetched = await call(session, 'browser_click', { selector: '#fetch' });
      expect(fetched.text).toContain('- blocked a request to http://127.0.0.1:9 (not an allowed origin)');
      // The page writes its own "fetch failed" once its promise rejects: on a busy machine
      // that can come after the click's observation, so wait for it (bounded).
      const failed = await call(session, 'browser_wait_for', { text: 'fetch failed', timeout_sec: 5 });
      expect(failed.text).toMatch(/^Result: "fetch failed" is there\./);
      const left = await call(session, 'browser_click', { selector: 'role=link[name="Leave"]' });
      expect(left.text).toContain('- blocked a request to http://example.com (not an allowed origin)');
      expect(left.text).not.toContain('URL: http://example.com');
    } finally {
      await session.close();
    }
  });
});

describe('the static site', () => {
  it('serves the site over HTTP but never the scorer inside it, nor anything outside it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'paddock-web-'));
    mkdirSync(path.join(dir, 'site'));
    writeFileSync(path.join(dir, 'site', 'index.html'), '<title>Home</title><p>home</p>');
    writeFileSync(path.join(dir, 'site', 'scorer.js'), '() => true');
    writeFileSync(path.join(dir, 'task.yaml'), 'secret: yes');
    const site = await serveStaticSite(path.join(dir, 'site'), {
      deny: [path.join(dir, 'site', 'scorer.js')],
    });
    const status = (pathname: string) =>
      new Promise<number>((resolve, reject) => {
        request(`${site.origin}${pathname}`, (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
    try {
      expect(await status('/')).toBe(200);
      expect(await status('/scorer.js')).toBe(404);
      expect(await status('/%2e%2e/task.yaml')).toBe(404);
      expect(await status('/..%2ftask.yaml')).toBe(404);
    } finally {
      await site.close();
    }
    // The same through the browser, with the scorer configured from inside site/.
    const session = await open(
      webTask('fault-scorer-in-site', { site: 'site/', score: 'site/scorer.js' }, { dir }),
    );
    try {
      const output = await call(session, 'browser_goto', { url: '/scorer.js' });
      expect(output.text).toContain('Not found');
      expect(await session.score({ signal })).toEqual({ browser: 1 });
    } finally {
      await session.close();
    }
  });
});

describe('set-up failures', () => {
  it('fails an app that exits early as a retryable start failure carrying its output', async () => {
    const task = webTask('fault-app', {
      app: {
        command: `node -e "console.error('cannot bind the port'); process.exit(3)"`,
        ready_timeout_sec: 5,
      },
    });
    await expect(open(task)).rejects.toMatchObject({
      code: 'SANDBOX_START_FAILED',
      retryable: true,
      message: expect.stringContaining('cannot bind the port'),
    });
  });

  it('fails a start page that cannot be reached as a retryable start failure', async () => {
    const closed = await listeningThenClosedPort();
    await expect(
      open(webTask('fault-unreachable', { url: `http://127.0.0.1:${closed}/` })),
    ).rejects.toMatchObject({
      code: 'SANDBOX_START_FAILED',
      retryable: true,
      message: expect.stringContaining('could not open the start page'),
    });
  });

  it('refuses a missing scorer file as a configuration error, not retryable', async () => {
    await expect(open(page('refs.html', { score: 'missing-scorer.js' }))).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      retryable: false,
    });
  });
});

/** Clicks "Add one" every turn; on its second turn of the first episode it kills the browser first. */
class KillingAgent implements Agent {
  readonly name = 'killer';
  killed: number[] = [];

  private readonly victim: BrowserToolProvider;

  constructor(victim: BrowserToolProvider) {
    this.victim = victim;
  }

  open(): AgentSession {
    return { act: (input) => this.turn(input) };
  }

  private async turn({ task, turnIndex }: AgentInput): Promise<AssistantTurn> {
    if (turnIndex >= 3)
      return { text: null, toolCalls: [{ id: `s${turnIndex}`, name: 'submit', arguments: '{}' }] };
    if (task.id === 'crash/0' && turnIndex === 1 && this.killed.length === 0) {
      this.killed = browserPids();
      for (const pid of this.killed) process.kill(pid, 'SIGKILL');
      await expect.poll(() => this.victim.pool.connected, { timeout: 10_000 }).toBe(false);
    }
    return {
      text: null,
      toolCalls: [
        { id: `c${turnIndex}`, name: 'browser_click', arguments: JSON.stringify({ selector: '#add' }) },
      ],
    };
  }
}

describe('a browser killed in the middle of a run', () => {
  it('fails the episodes it hit as retryable infrastructure errors; their retries and later episodes get a new browser', async () => {
    // Only the browser of this run may be running, so that the agent kills the right one.
    await provider.close();
    await expect.poll(() => browserPids().length, { timeout: 10_000 }).toBe(0);
    const crashProvider = new BrowserToolProvider();
    const tasks = Array.from({ length: 4 }, (_, index) =>
      webTask(`crash/${index}`, {
        url: `${server.origin}/refs.html`,
        score: { expression: "Number(document.getElementById('count').textContent) >= 3" },
      }),
    );
    const agent = new KillingAgent(crashProvider);
    try {
      const episodes = await runEpisodes({
        runId: 'it-browser-crash',
        tasks,
        agent,
        toolProviders: [crashProvider],
        concurrency: 2,
        retryDelayMs: 10,
      });
      expect(agent.killed.length).toBe(1);
      expect(crashProvider.pool.launches).toBe(2);
      expect(episodes).toHaveLength(4);
      for (const record of episodes) {
        expect(record.status, record.taskId).toBe('completed');
        expect(record.reward.total, record.taskId).toBe(1);
      }
      const crashed = episodes.find((record) => record.taskId === 'crash/0')!;
      expect(crashed.attempt).toBe(2);
      expect(crashed.previousAttempts[0]).toMatchObject({ code: 'SANDBOX_FAILED' });
      expect(crashed.previousAttempts[0]!.message).toMatch(/browser disconnected/);
    } finally {
      await crashProvider.close();
    }
    await expect.poll(() => browserPids().length, { timeout: 10_000 }).toBe(0);
  });
});
