/**
 * Dataset rows fill `{{field}}` in plug-in sections too (here `browser:`): each row's task
 * gets its own page to open and its own target to point at, and a row that lacks a field
 * such a section uses is reported naming the section's field.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { browserTaskExtension, resolveBrowserConfig } from '../../../sandboxes/browser/index.ts';
import { loadTasks, validateTasks } from '../../../tasks/index.ts';
import { removeTrees, writeTree } from './helpers.ts';

afterAll(removeTrees);

const extensions = { browser: browserTaskExtension };

const TASK_YAML = `
dataset: { file: rows.jsonl }
instruction: "Click {{label}}."
tools: [submit]
verifier: false
browser:
  url: http://127.0.0.1:8080
  start: '/{{page}}'
  actions: coordinates
  viewport: { width: 1024, height: 768 }
  grounding:
    target: { role: button, name: '{{label}}' }
    rewards: { hit: 1 }
`;

const ROWS = [
  JSON.stringify({ id: 'home', page: 'index.html', label: 'Buy' }),
  JSON.stringify({ id: 'cart', page: 'cart.html?item=2', label: 'Pay now' }),
].join('\n');

async function browserDataset(rows: string, taskYaml = TASK_YAML) {
  return writeTree({ 'task.yaml': taskYaml, 'rows.jsonl': rows }, 'pages');
}

describe('dataset rows in plug-in sections', () => {
  it('fills {{field}} in the browser section per row', async () => {
    const [home, cart] = await loadTasks(await browserDataset(ROWS), { extensions });
    expect(home?.id).toMatch(/\/pages@home$/);
    expect(home?.instruction).toBe('Click Buy.');
    expect(home?.extensions.browser).toMatchObject({
      url: 'http://127.0.0.1:8080',
      start: '/index.html',
      grounding: { target: { role: 'button', name: 'Buy' } },
    });
    expect(cart?.extensions.browser).toMatchObject({
      start: '/cart.html?item=2',
      grounding: { target: { role: 'button', name: 'Pay now' } },
    });
  });

  it('leaves the rest of the section as parsed: numbers, enums and defaults', async () => {
    const [home, cart] = await loadTasks(await browserDataset(ROWS), { extensions });
    for (const task of [home, cart]) {
      expect(task?.extensions.browser).toMatchObject({
        actions: 'coordinates',
        viewport: { width: 1024, height: 768 },
        grounding: { rewards: { hit: 1 } },
        popups: 'block',
        action_timeout_sec: 3,
      });
    }
    // Each row's task has its own copy of the section.
    expect(home?.extensions.browser).not.toBe(cart?.extensions.browser);
  });

  it('gives a section the plug-in resolves as it would a written one', async () => {
    const [, cart] = await loadTasks(await browserDataset(ROWS), { extensions });
    const config = resolveBrowserConfig(cart!.extensions.browser, cart!.dir);
    expect(config.start).toBe('/cart.html?item=2');
    expect(config.grounding).toEqual({
      targets: [{ role: 'button', name: 'Pay now' }],
      rewards: { hit: 1 },
    });
    expect(config).toMatchObject({ screenshot: true, snapshot: false });
  });

  it('fills a row value that is not a string as JSON', async () => {
    const [task] = await loadTasks(
      await browserDataset(JSON.stringify({ id: 'n', page: 42, label: 'Buy' })),
      { extensions },
    );
    expect(task?.extensions.browser).toMatchObject({ start: '/42' });
  });

  it('reports a row without a field that browser.start uses, naming browser.start', async () => {
    const dir = await browserDataset(
      `${JSON.stringify({ id: 'ok', page: 'a.html', label: 'Buy' })}\n${JSON.stringify({ id: 'bad', label: 'Buy' })}\n`,
    );
    const { tasks, problems } = await validateTasks(dir, { extensions });
    expect(tasks).toEqual([]);
    expect(problems).toEqual([
      {
        file: path.join(dir, 'rows.jsonl'),
        line: 2,
        path: 'page',
        message: 'missing field: {{page}} is used by browser.start',
      },
    ]);
  });

  it('lists every place a missing field is used, the plug-in section with the others', async () => {
    const { problems } = await validateTasks(
      await browserDataset(JSON.stringify({ id: 'bad', page: 'a.html' })),
      { extensions },
    );
    expect(problems).toEqual([
      expect.objectContaining({
        line: 1,
        path: 'label',
        message: 'missing field: {{label}} is used by instruction, browser.grounding.target.name',
      }),
    ]);
  });

  it('leaves a browser section without templates alone, and {{…}} alone without a dataset', async () => {
    const plain = TASK_YAML.replace("'/{{page}}'", "'/fixed.html'").replace("'{{label}}'", 'Buy');
    const [task] = await loadTasks(await browserDataset(JSON.stringify({ id: 'x', label: 'Go' }), plain), {
      extensions,
    });
    expect(task?.instruction).toBe('Click Go.');
    expect(task?.extensions.browser).toMatchObject({
      start: '/fixed.html',
      grounding: { target: { name: 'Buy' } },
    });

    const single = await writeTree(
      {
        'task.yaml':
          "instruction: Open it.\ntools: [submit]\nverifier: false\nbrowser:\n  url: http://127.0.0.1:8080\n  start: '/{{page}}'\n",
      },
      'single',
    );
    const [alone] = await loadTasks(single, { extensions });
    expect(alone?.extensions.browser).toMatchObject({ start: '/{{page}}' });
  });
});
