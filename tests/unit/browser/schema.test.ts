import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isPaddockError } from '../../../harness/index.ts';
import { browserTaskExtension, resolveBrowserConfig } from '../../../sandboxes/browser/index.ts';
import { loadTasks, validateTasks } from '../../../tasks/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');

function issues(section: unknown): string[] {
  const parsed = browserTaskExtension.safeParse(section);
  return parsed.success
    ? []
    : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

describe('browserTaskExtension', () => {
  it('fills every default for a minimal site section', () => {
    expect(browserTaskExtension.parse({ site: 'site/' })).toEqual({
      site: 'site/',
      start: '/',
      allowed_origins: [],
      actions: 'refs',
      coordinates: 'css',
      marks: false,
      uploads: [],
      viewport: { width: 1280, height: 720 },
      max_snapshot_chars: 12_000,
      popups: 'block',
      dialogs: 'accept',
      action_timeout_sec: 3,
      load_timeout_sec: 10,
      settle_timeout_sec: 2,
    });
  });

  it('parses its own output again unchanged, as the loader stores it', () => {
    const once = browserTaskExtension.parse({
      app: { command: 'node server.js' },
      score: { expression: 'true' },
    });
    expect(browserTaskExtension.parse(once)).toEqual(once);
  });

  it('requires exactly one of site, app, url and sandbox', () => {
    expect(issues({})).toEqual([': expected exactly one of site, app, url or sandbox']);
    expect(issues({ site: 'site/', url: 'http://127.0.0.1:8080/' })).toEqual([
      'url: give only one of site, app, url or sandbox (found site, url)',
    ]);
    expect(issues({ app: { command: 'node s.js' }, sandbox: { port: 8000 } })).toEqual([
      'sandbox: give only one of site, app, url or sandbox (found app, sandbox)',
    ]);
  });

  it('fills the defaults of a sandbox source', () => {
    expect(browserTaskExtension.parse({ sandbox: { port: 8000 } }).sandbox).toEqual({
      port: 8000,
      ready_path: '/',
      ready_timeout_sec: 20,
    });
    const once = browserTaskExtension.parse({ sandbox: { port: 80, command: 'python3 -m http.server 80' } });
    expect(browserTaskExtension.parse(once)).toEqual(once);
  });

  it('refuses a sandbox port out of range, a missing port, a bad ready path and unknown keys', () => {
    expect(issues({ sandbox: { port: 0 } })[0]).toMatch(/^sandbox\.port: /);
    expect(issues({ sandbox: { port: 65_536 } })[0]).toMatch(/^sandbox\.port: /);
    expect(issues({ sandbox: { port: 80.5 } })[0]).toMatch(/^sandbox\.port: /);
    expect(issues({ sandbox: { port: '8000' } })[0]).toMatch(/^sandbox\.port: /);
    expect(issues({ sandbox: {} })[0]).toMatch(/^sandbox\.port: /);
    expect(issues({ sandbox: { port: 8000, ready_path: 'health' } })[0]).toMatch(
      /^sandbox\.ready_path: expected a path starting with \//,
    );
    expect(issues({ sandbox: { port: 8000, ready_timeout_sec: 0 } })[0]).toMatch(
      /^sandbox\.ready_timeout_sec: /,
    );
    expect(issues({ sandbox: { port: 8000, command: '' } })[0]).toMatch(/^sandbox\.command: /);
    expect(issues({ sandbox: { port: 8000, host: '0.0.0.0' } })[0]).toMatch(/host|Unrecognized key/);
  });

  it('refuses unknown keys, absolute or escaping paths, and origins with a path', () => {
    expect(issues({ site: 'site/', colour: 'red' })[0]).toMatch(/colour|Unrecognized key/);
    expect(issues({ site: '/etc' })[0]).toMatch(/^site: expected a path relative to the task folder/);
    expect(issues({ site: 'site/', score: '../outside.js' })[0]).toMatch(/^score: /);
    expect(issues({ site: 'site/', allowed_origins: ['http://example.com/path'] })[0]).toMatch(
      /^allowed_origins\.0: expected an origin/,
    );
    expect(issues({ site: 'site/', start: 'index.html' })[0]).toMatch(
      /^start: expected a path starting with \//,
    );
  });
});

describe('resolveBrowserConfig', () => {
  it('resolves paths against the task folder and seconds into milliseconds', () => {
    const config = resolveBrowserConfig(
      {
        site: 'site/',
        score: 'scorer.js',
        load_timeout_sec: 1.5,
        allowed_origins: ['HTTP://Example.com:80'],
      },
      '/tasks/web/demo',
    );
    expect(config.source).toEqual({ kind: 'site', root: '/tasks/web/demo/site' });
    expect(config.scorer).toEqual({ kind: 'file', path: '/tasks/web/demo/scorer.js' });
    expect(config.loadTimeoutMs).toBe(1_500);
    expect(config.allowedOrigins).toEqual(['http://example.com']);
  });

  it('gives an app its folder, ready path and string environment', () => {
    const config = resolveBrowserConfig({ app: { command: 'node s.js', env: { DEBUG: true, N: 3 } } }, '/t');
    expect(config.source).toEqual({
      kind: 'app',
      command: 'node s.js',
      cwd: '/t',
      readyPath: '/',
      readyTimeoutMs: 20_000,
      env: { DEBUG: 'true', N: '3' },
    });
  });

  it('gives a sandbox source its port, command, ready path and timeout in ms', () => {
    expect(
      resolveBrowserConfig(
        {
          sandbox: {
            port: 8000,
            command: 'python3 -m http.server',
            ready_path: '/health',
            ready_timeout_sec: 2.5,
          },
        },
        '/t',
      ).source,
    ).toEqual({
      kind: 'sandbox',
      port: 8000,
      command: 'python3 -m http.server',
      readyPath: '/health',
      readyTimeoutMs: 2_500,
    });
    expect(resolveBrowserConfig({ sandbox: { port: 3000 } }, '/t').source).toEqual({
      kind: 'sandbox',
      port: 3000,
      readyPath: '/',
      readyTimeoutMs: 20_000,
    });
  });

  it('throws CONFIG_INVALID naming the field', () => {
    try {
      resolveBrowserConfig({ site: 'site/', popups: 'sometimes' }, '/t');
      expect.unreachable();
    } catch (error) {
      expect(isPaddockError(error, 'CONFIG_INVALID')).toBe(true);
      expect((error as Error).message).toMatch(/popups/);
    }
  });
});

describe('tasks/web', () => {
  it('loads with the browser extension registered, every task with a browser section and actions', async () => {
    const tasks = await loadTasks([path.join(ROOT, 'tasks/web')], {
      extensions: { browser: browserTaskExtension },
      cwd: ROOT,
    });
    expect(tasks.length).toBeGreaterThanOrEqual(8);
    for (const task of tasks) {
      // Only tasks whose pages come from their sandbox have one.
      const section = task.extensions.browser as { sandbox?: unknown };
      if (section.sandbox === undefined) expect(task.environment, task.id).toBeUndefined();
      else expect(task.environment, task.id).toBeDefined();
      expect(task.tools).toEqual(['submit']);
      expect(task.solution?.kind, task.id).toBe('actions');
      const config = resolveBrowserConfig(task.extensions.browser, task.dir);
      expect(config.scorer?.kind, task.id).toBe('file');
    }
  });
});

describe('paddock tasks validate', () => {
  it('reports two sources and a bad sandbox port with the file and the field path', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'paddock-browser-validate-'));
    const write = (name: string, browser: string) => {
      mkdirSync(path.join(dir, name));
      writeFileSync(
        path.join(dir, name, 'task.yaml'),
        `instruction: Do it.\ntools: [submit]\nverifier: false\nbrowser:\n${browser}`,
      );
    };
    write('two-sources', '  site: site/\n  sandbox: { port: 8000 }\n');
    write('bad-port', '  sandbox: { port: 70000, command: python3 -m http.server 70000 }\n');
    write('good', '  sandbox: { port: 8000 }\n');
    const { tasks, problems } = await validateTasks(dir, { extensions: { browser: browserTaskExtension } });
    expect(tasks.map((task) => task.id)).toEqual([`${path.basename(dir)}/good`]);
    const shown = problems.map(
      (problem) => `${path.relative(dir, problem.file)} ${problem.path}: ${problem.message}`,
    );
    expect(shown).toHaveLength(2);
    expect(shown).toContainEqual(expect.stringMatching(/^bad-port\/task\.yaml browser\.sandbox\.port: /));
    expect(shown).toContainEqual(
      'two-sources/task.yaml browser.sandbox: give only one of site, app, url or sandbox (found site, sandbox)',
    );
  });
});
