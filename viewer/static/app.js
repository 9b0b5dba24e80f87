// @ts-check
/**
 * paddock view: the pages, routed by the URL's hash.
 *
 *   #/                                    runs and training outputs
 *   #/run/<run>?task&status&…             a run: per-task table, episode list (filter, sort, search, pages)
 *   #/run/<run>/episode/<id>?attempt=N    a transcript
 *   #/run/<run>/episode/<id>/tokens/<n>   the token view of turn n
 *   #/compare/<a>/<b>                     two runs per task
 *   #/training/<id>                       learning curves and the runs of each step
 *
 * Data comes from the JSON API of server.ts; live runs push `update` events (SSE) and the
 * page on screen reloads its data.
 */
import { lineChart } from './charts.js';
import { api, diff, duration, enc, folded, h, int, num, statusTag, usd, when } from './dom.js';

const app = /** @type {HTMLElement} */ (document.getElementById('app'));
const crumbs = /** @type {HTMLElement} */ (document.getElementById('crumbs'));
const liveDot = /** @type {HTMLElement} */ (document.getElementById('live'));

/** The live stream of the run on screen, if any. @type {EventSource | undefined} */
let stream;
/** The timer of the runs list's polling, if any. @type {number | undefined} */
let poll;
/** Bumped on every navigation: a slow load for an old page does not draw over the new one. */
let generation = 0;

const STATUSES = [
  'completed',
  'limit',
  'truncated',
  'refused',
  'sandbox-killed',
  'agent-error',
  'infra-error',
];

/** @param {...(Node | string | null)} items */
function setCrumbs(...items) {
  const shown = /** @type {(Node | string)[]} */ (items.filter((item) => item !== null));
  crumbs.replaceChildren(
    ...shown.flatMap((item, i) => (i ? [h('span', { class: 'sep' }, '›'), item] : [item])),
  );
}

/** @param {string} message */
function showError(message) {
  app.replaceChildren(h('div', { class: 'error-box' }, message));
}

/**
 * Follows a run's live stream: `onUpdate` after each change past the first message.
 * @param {string} runId
 * @param {() => void} onUpdate
 */
function follow(runId, onUpdate) {
  stream?.close();
  let first = true;
  stream = new EventSource(`/api/runs/${enc(runId)}/live`);
  stream.addEventListener('update', (event) => {
    const state = JSON.parse(/** @type {MessageEvent} */ (event).data);
    liveDot.hidden = !state.live;
    if (first) first = false;
    else onUpdate();
  });
}

function stopFollowing() {
  stream?.close();
  stream = undefined;
  liveDot.hidden = true;
  if (poll !== undefined) clearInterval(poll);
  poll = undefined;
}

/** The route of the current hash: its path segments and its query. */
function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = hash.split('?');
  return {
    parts: (path ?? '').split('/').filter(Boolean).map(decodeURIComponent),
    params: new URLSearchParams(query),
  };
}

async function render() {
  const mine = ++generation;
  stopFollowing();
  const { parts, params } = route();
  const still = () => mine === generation;
  try {
    if (parts.length === 0) await runsPage(still);
    else if (parts[0] === 'run' && parts[1] && parts.length === 2) await runPage(parts[1], params, still);
    else if (parts[0] === 'run' && parts[1] && parts[2] === 'episode' && parts[3] && parts.length === 4)
      await episodePage(parts[1], parts[3], params, still);
    else if (
      parts[0] === 'run' &&
      parts[1] &&
      parts[2] === 'episode' &&
      parts[3] &&
      parts[4] === 'tokens' &&
      parts[5]
    )
      await tokensPage(parts[1], parts[3], Number(parts[5]), params, still);
    else if (parts[0] === 'compare' && parts[1]) await comparePage(parts[1], parts[2], still);
    else if (parts[0] === 'training' && parts[1]) await trainingPage(parts[1], still);
    else showError(`No page ${location.hash}`);
  } catch (error) {
    if (still()) showError(error instanceof Error ? error.message : String(error));
  }
}

// ─── runs ──────────────────────────────────────────────────────────────────────

/** @param {() => boolean} still */
async function runsPage(still) {
  setCrumbs(h('span', null, 'runs'));
  document.title = 'paddock view';
  const data = await api('/api/runs?limit=200');
  if (!still()) return;
  const rows = data.runs.map((/** @type {any} */ run) =>
    h(
      'tr',
      { 'data-run': run.id },
      h(
        'td',
        null,
        h('a', { href: `#/run/${enc(run.id)}` }, run.id),
        run.live ? h('span', { class: 'live-mark', title: 'being written' }, ' live') : null,
      ),
      h('td', { class: 'nowrap' }, when(run.createdAt)),
      h('td', null, run.agent || '–'),
      h('td', { class: 'num' }, int(run.tasks)),
      h('td', { class: 'num' }, `${int(run.done)} / ${int(run.planned)}`),
      h('td', { class: 'num' }, num(run.meanReward)),
      h('td', { class: 'num' }, run.errors ? int(run.errors) : '–'),
      h('td', { class: 'num' }, `${int(run.promptTokens)} / ${int(run.completionTokens)}`),
      h('td', { class: 'num' }, usd(run.costUsd)),
      h('td', null, run.training ? h('a', { href: `#/training/${enc(run.training)}` }, run.training) : ''),
    ),
  );
  app.replaceChildren(
    h('h1', null, 'Runs'),
    h(
      'div',
      { class: 'meta' },
      `${int(data.total)} runs${data.total > data.runs.length ? ` (newest ${data.runs.length} shown)` : ''}`,
    ),
    h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        { id: 'runs' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ...['run', 'created', 'agent'].map((t) => h('th', null, t)),
            ...['tasks', 'done / planned', 'mean reward', 'errors', 'tokens in / out', 'cost'].map((t) =>
              h('th', { class: 'num' }, t),
            ),
            h('th', null, 'training'),
          ),
        ),
        h('tbody', null, ...rows),
      ),
    ),
    data.trainings.length
      ? h(
          'div',
          null,
          h('h2', null, 'Training runs'),
          h(
            'table',
            { id: 'trainings' },
            h(
              'thead',
              null,
              h('tr', null, h('th', null, 'output'), h('th', { class: 'num' }, 'episode runs')),
            ),
            h(
              'tbody',
              null,
              ...data.trainings.map((/** @type {any} */ t) =>
                h(
                  'tr',
                  null,
                  h('td', null, h('a', { href: `#/training/${enc(t.id)}` }, t.id)),
                  h('td', { class: 'num' }, int(t.runs)),
                ),
              ),
            ),
          ),
        )
      : null,
  );
  if (data.runs.some((/** @type {any} */ run) => run.live)) {
    poll = window.setInterval(() => {
      if (still()) void runsPage(still);
    }, 2000);
  }
}

// ─── a run ─────────────────────────────────────────────────────────────────────

/** The episode table's columns: label, sort key, cell. */
const EPISODE_COLUMNS = /** @type {[string, string | null, (e: any) => Node | string, string?][]} */ ([
  ['episode', null, (e) => e.episodeId],
  ['task', 'task', (e) => e.taskId],
  [
    'status',
    'status',
    (e) =>
      statusTag(
        e.status +
          (e.limit
            ? ` (${e.limit})`
            : e.truncation
              ? ` (${e.truncation})`
              : e.refusal
                ? ` (${e.refusal})`
                : ''),
      ),
  ],
  ['reward', 'reward', (e) => num(e.reward), 'num'],
  ['turns', 'turns', (e) => int(e.turns), 'num'],
  ['tokens', 'tokens', (e) => int((e.inputTokens ?? 0) + (e.outputTokens ?? 0)), 'num'],
  ['cost', 'costUsd', (e) => usd(e.costUsd), 'num'],
  ['time', 'durationMs', (e) => duration(e.durationMs), 'num'],
  ['error', 'errorCode', (e) => (e.errorCode ? h('span', { title: e.errorMessage ?? '' }, e.errorCode) : '')],
  ['started', 'startedAt', (e) => when(e.startedAt)],
]);

/**
 * @param {string} runId
 * @param {URLSearchParams} params
 * @param {() => boolean} still
 */
async function runPage(runId, params, still) {
  // The live stream first: the server answers in order, so the data asked for next is at
  // least as new as the stream's first state, and every record after it is an update.
  let drawn = false;
  let missed = false;
  follow(runId, () => {
    if (drawn) void redraw();
    else missed = true;
  });
  // Both at once; the episode table is drawn as soon as its page comes, the run's table after.
  const firstPage = fetchEpisodes(runId, params);
  const runView = api(`/api/runs/${enc(runId)}`);
  runView.catch(() => {}); // reported below when awaited
  document.title = `${runId} · paddock view`;
  setCrumbs(h('a', { href: '#/' }, 'runs'), h('span', null, runId));
  const summaryBox = h('div', { id: 'summary' }, h('div', { class: 'meta' }, 'loading the run…'));
  const episodesBox = h('div', { id: 'episodes' });
  const compareSelect = h(
    'select',
    { id: 'compare-with', 'aria-label': 'run to compare with' },
    h('option', { value: '' }, 'compare with…'),
  );
  compareSelect.addEventListener('change', () => {
    const other = /** @type {HTMLSelectElement} */ (compareSelect).value;
    if (other) location.hash = `#/compare/${enc(runId)}/${enc(other)}`;
  });
  const page = await firstPage;
  if (!still()) return;
  app.replaceChildren(h('h1', null, runId), summaryBox, h('h2', null, 'Episodes'), episodesBox);
  await drawEpisodes(episodesBox, runId, null, params, still, Promise.resolve(page));
  const run = await runView;
  if (!still()) return;
  setCrumbs(
    h('a', { href: '#/' }, 'runs'),
    run.training ? h('a', { href: `#/training/${enc(run.training)}` }, run.training) : null,
    h('span', null, runId),
  );
  drawRunSummary(summaryBox, run, compareSelect);
  fillFilterOptions(episodesBox, run);
  // The runs to compare with, once the page is on screen.
  const list = await api('/api/runs?limit=200');
  if (!still()) return;
  compareSelect.append(
    ...list.runs
      .filter((/** @type {any} */ other) => other.id !== runId)
      .map((/** @type {any} */ other) =>
        h('option', { value: other.id }, `${other.id} (${other.agent || 'agent?'})`),
      ),
  );
  drawn = true;
  if (missed) await redraw();

  async function redraw() {
    if (!still()) return;
    const fresh = await api(`/api/runs/${enc(runId)}`);
    if (!still()) return;
    drawRunSummary(summaryBox, fresh, compareSelect);
    await drawEpisodes(episodesBox, runId, fresh, route().params, still);
  }
}

/**
 * Adds the run's tasks and error kinds to the filters drawn before the run came, in place
 * (what a person typed meanwhile stays).
 * @param {HTMLElement} box
 * @param {any} run
 */
function fillFilterOptions(box, run) {
  const lists = {
    task: run.summary.tasks.map((/** @type {any} */ t) => t.task),
    errorCode: Object.keys(run.errorCodes ?? {}).sort(),
  };
  for (const [name, values] of Object.entries(lists)) {
    const select = box.querySelector(`select[name="${name}"]`);
    if (!select) continue;
    const present = new Set(
      [...select.querySelectorAll('option')].map((option) => option.getAttribute('value')),
    );
    select.append(
      ...values.filter((value) => !present.has(value)).map((value) => h('option', { value }, value)),
    );
  }
}

/**
 * @param {HTMLElement} box
 * @param {any} run
 * @param {HTMLElement} compareSelect
 */
function drawRunSummary(box, run, compareSelect) {
  const tasks = run.summary.tasks;
  const total = run.summary.total;
  const keys = (/** @type {string} */ field) =>
    [...new Set(tasks.flatMap((/** @type {any} */ t) => Object.keys(t[field] ?? {})))].sort();
  const components = keys('components');
  const turnComponents = keys('turnComponents');
  const constraints = keys('constraints');
  const scores = keys('scores');
  const head = [
    h('th', null, 'task'),
    ...['episodes', 'mean reward', 'pass rate', 'errors'].map((t) => h('th', { class: 'num' }, t)),
    ...components.map((c) => h('th', { class: 'num', title: 'reward component (mean)' }, c)),
    ...turnComponents.map((c) =>
      h('th', { class: 'num', title: 'turn reward, summed per episode (mean)' }, `turn:${c}`),
    ),
    ...scores.map((c) => h('th', { class: 'num', title: 'verifier score (mean)' }, `score:${c}`)),
    ...constraints.map((c) => h('th', { class: 'num', title: 'constraint (mean)' }, `constraint:${c}`)),
    ...['tokens in / out', 'cost'].map((t) => h('th', { class: 'num' }, t)),
    h('th', { class: 'num', title: 'wall time of an episode (mean); the sum over hover' }, 'time'),
    h('th', null, 'statuses'),
  ];
  const row = (/** @type {any} */ t, /** @type {boolean} */ isTotal) =>
    h(
      'tr',
      { class: isTotal ? 'total' : null, 'data-task': isTotal ? null : t.task },
      h(
        'td',
        null,
        isTotal
          ? 'all tasks'
          : h('a', { href: `#/run/${enc(run.id)}?task=${encodeURIComponent(t.task)}` }, t.task),
      ),
      h('td', { class: 'num' }, int(t.episodes)),
      h('td', { class: 'num' }, num(t.meanReward)),
      h('td', { class: 'num' }, num(t.passRate, 2)),
      h('td', { class: 'num' }, t.errors ? int(t.errors) : '–'),
      ...components.map((c) => h('td', { class: 'num' }, num(t.components?.[c]))),
      ...turnComponents.map((c) => h('td', { class: 'num' }, num(t.turnComponents?.[c]))),
      ...scores.map((c) => h('td', { class: 'num' }, num(t.scores?.[c]))),
      ...constraints.map((c) => h('td', { class: 'num' }, num(t.constraints?.[c]))),
      h('td', { class: 'num' }, `${int(t.usage?.promptTokens)} / ${int(t.usage?.completionTokens)}`),
      h('td', { class: 'num' }, usd(t.costUsd)),
      h(
        'td',
        { class: 'num', title: t.durationMs ? `${duration(t.durationMs.total)} in all` : null },
        t.durationMs ? duration(t.durationMs.mean) : '–',
      ),
      h(
        'td',
        null,
        ...Object.entries(t.statuses ?? {}).map(([s, n]) => h('span', { class: 'tag' }, `${s} ${n}`)),
      ),
    );
  box.replaceChildren(
    h(
      'div',
      { class: 'meta' },
      h('b', null, run.agent || 'agent?'),
      ` · created ${when(run.createdAt)} · `,
      h('b', { id: 'done' }, `${int(run.done)} / ${int(run.planned)}`),
      ' episodes done · ',
      run.live ? h('span', { class: 'live-mark' }, 'live') : 'finished',
      ' · ',
      run.indexing
        ? h(
            'span',
            { class: 'indexing', title: 'the figures cover the records indexed so far; the page follows' },
            `indexing ${Math.floor((100 * run.indexing.indexedBytes) / Math.max(1, run.indexing.totalBytes))}% · `,
          )
        : null,
      compareSelect,
    ),
    h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        { id: 'tasks' },
        h('thead', null, h('tr', null, ...head)),
        h('tbody', null, ...tasks.map((/** @type {any} */ t) => row(t, false)), row(total, true)),
      ),
    ),
  );
}

/** How many episodes a page shows. */
const PAGE_SIZE = 50;

/** The episode filters: fields of the filter form, keys of the URL's query and of the API's. */
const FILTER_KEYS = ['task', 'status', 'errorCode', 'minReward', 'maxReward', 'minTurns', 'maxTurns', 'text'];

/**
 * The page of episodes the URL's query asks for.
 * @param {string} runId
 * @param {URLSearchParams} params
 */
function fetchEpisodes(runId, params) {
  const query = new URLSearchParams();
  for (const key of [...FILTER_KEYS, 'sort', 'descending', 'offset']) {
    const value = params.get(key);
    if (value) query.set(key, value);
  }
  query.set('limit', String(PAGE_SIZE));
  return api(`/api/runs/${enc(runId)}/episodes?${query}`);
}

/**
 * The filter form and the table of one page of episodes. Filters live in the URL's
 * query, so a filtered list can be linked to and survives a reload.
 * @param {HTMLElement} box
 * @param {string} runId
 * @param {any} run the run's view, or null while it loads
 * @param {URLSearchParams} params
 * @param {() => boolean} still
 * @param {Promise<any>} [prefetched] the page, when its request was already made
 */
async function drawEpisodes(box, runId, run, params, still, prefetched) {
  const limit = PAGE_SIZE;
  const page = await (prefetched ?? fetchEpisodes(runId, params));
  if (!still()) return;
  const go = (/** @type {Record<string, string | undefined>} */ changes) => {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(changes)) {
      if (value === undefined || value === '') next.delete(key);
      else next.set(key, value);
    }
    if (!('offset' in changes)) next.delete('offset');
    location.hash = `#/run/${enc(runId)}${next.toString() ? `?${next}` : ''}`;
  };
  const field = (
    /** @type {string} */ name,
    /** @type {string} */ label,
    /** @type {Record<string, unknown>} */ attrs,
  ) => h('label', null, label, h('input', { name, value: params.get(name) ?? '', ...attrs }));
  const select = (/** @type {string} */ name, /** @type {string} */ label, /** @type {string[]} */ options) =>
    h(
      'label',
      null,
      label,
      h(
        'select',
        { name },
        h('option', { value: '' }, 'any'),
        // The current value stays an option while the run's lists are still loading.
        ...[...new Set([...options, ...(params.get(name) ? [String(params.get(name))] : [])])].map((o) =>
          h('option', { value: o, selected: params.get(name) === o }, o),
        ),
      ),
    );
  const form = h(
    'form',
    {
      class: 'filters',
      id: 'filters',
      onsubmit: (/** @type {Event} */ event) => {
        event.preventDefault();
        const data = new FormData(/** @type {HTMLFormElement} */ (event.target));
        /** @type {Record<string, string>} */
        const changes = {};
        for (const key of FILTER_KEYS) changes[key] = String(data.get(key) ?? '').trim();
        go(changes);
      },
      onchange: (/** @type {Event} */ event) => {
        if (/** @type {HTMLElement} */ (event.target).tagName === 'SELECT')
          /** @type {HTMLFormElement} */ (form).requestSubmit();
      },
    },
    field('text', 'search', { type: 'search', placeholder: 'text in the transcript', size: 28 }),
    select(
      'task',
      'task',
      (run?.summary.tasks ?? []).map((/** @type {any} */ t) => t.task),
    ),
    select('status', 'status', STATUSES),
    select('errorCode', 'error kind', Object.keys(run?.errorCodes ?? {}).sort()),
    field('minReward', 'reward ≥', { type: 'number', step: 'any' }),
    field('maxReward', 'reward ≤', { type: 'number', step: 'any' }),
    field('minTurns', 'turns ≥', { type: 'number', min: 0 }),
    field('maxTurns', 'turns ≤', { type: 'number', min: 0 }),
    h('button', { type: 'submit' }, 'filter'),
    h('button', { type: 'button', onclick: () => (location.hash = `#/run/${enc(runId)}`) }, 'clear'),
  );
  const sort = params.get('sort');
  const descending = params.get('descending') === 'true';
  const head = EPISODE_COLUMNS.map(([label, key, , cls]) =>
    h(
      'th',
      {
        class: [cls, key ? 'sortable' : '', key && key === sort ? `sorted${descending ? ' desc' : ''}` : '']
          .filter(Boolean)
          .join(' '),
        'data-sort': key,
        onclick: key
          ? () => go({ sort: key, descending: key === sort && !descending ? 'true' : undefined })
          : null,
      },
      label,
    ),
  );
  const attemptsAll = false;
  const rows = page.entries.map((/** @type {any} */ e) =>
    h(
      'tr',
      { 'data-episode': e.episodeId },
      ...EPISODE_COLUMNS.map(([, , cell, cls], i) =>
        h(
          'td',
          { class: cls },
          i === 0
            ? h(
                'a',
                {
                  href: `#/run/${enc(runId)}/episode/${enc(e.episodeId)}${attemptsAll ? `?attempt=${e.attempt}` : ''}`,
                },
                e.episodeId,
              )
            : cell(e),
        ),
      ),
    ),
  );
  const offset = Number(params.get('offset') ?? 0);
  const pager = h(
    'div',
    { class: 'pager' },
    h(
      'button',
      {
        type: 'button',
        disabled: offset <= 0,
        onclick: () => go({ offset: String(Math.max(0, offset - limit)) }),
      },
      '‹ previous',
    ),
    h(
      'span',
      { id: 'page-info' },
      page.total === 0
        ? 'no episodes match'
        : `${int(offset + 1)}–${int(Math.min(offset + limit, page.total))} of ${int(page.total)}`,
    ),
    h(
      'button',
      {
        type: 'button',
        disabled: offset + limit >= page.total,
        onclick: () => go({ offset: String(offset + limit) }),
      },
      'next ›',
    ),
  );
  box.replaceChildren(
    form,
    pager,
    h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        { id: 'episode-table' },
        h('thead', null, h('tr', null, ...head)),
        h('tbody', null, ...rows),
      ),
    ),
  );
  // For bench/viewer.ts: navigation start → the first episode table on screen.
  if (performance.getEntriesByName('episodes-rendered').length === 0) performance.mark('episodes-rendered');
}

// ─── an episode ────────────────────────────────────────────────────────────────

/**
 * @param {string} runId
 * @param {string} episodeId
 * @param {URLSearchParams} params
 * @param {() => boolean} still
 */
async function episodePage(runId, episodeId, params, still) {
  const attempt = params.get('attempt');
  const e = await api(
    `/api/runs/${enc(runId)}/episodes/${enc(episodeId)}${attempt ? `?attempt=${attempt}` : ''}`,
  );
  if (!still()) return;
  document.title = `${episodeId} · paddock view`;
  setCrumbs(
    h('a', { href: '#/' }, 'runs'),
    h('a', { href: `#/run/${enc(runId)}` }, runId),
    h('span', null, episodeId),
  );
  const tokensIn = e.usage?.promptTokens ?? 0;
  const tokensOut = e.usage?.completionTokens ?? 0;
  const cost = e.turns.reduce((/** @type {number} */ sum, /** @type {any} */ t) => sum + (t.costUsd ?? 0), 0);
  const header = h(
    'div',
    { class: 'meta' },
    h('b', null, e.taskId),
    ' · ',
    statusTag(e.status),
    e.limit ? ` (limit: ${e.limit})` : '',
    e.truncation ? ` (${e.truncation})` : '',
    e.refusal ? ` (${e.refusal})` : '',
    ' · reward ',
    h('b', { id: 'reward' }, num(e.reward?.total)),
    ` · ${e.turns.length} turns · tokens ${int(tokensIn)} in / ${int(tokensOut)} out · cost ${usd(cost)} · ${duration(e.durationMs)} · agent ${e.agent} · seed ${e.seed} · epoch ${e.epoch} · attempt `,
    e.attempts.length > 1
      ? h(
          'span',
          null,
          ...e.attempts.map((/** @type {number} */ a) =>
            a === e.attempt
              ? h('b', null, `${a} `)
              : h('a', { href: `#/run/${enc(runId)}/episode/${enc(episodeId)}?attempt=${a}` }, `${a} `),
          ),
        )
      : String(e.attempt),
  );
  const parts = [h('h1', null, episodeId), header];
  if (e.error)
    parts.push(
      h(
        'div',
        { class: 'error-box' },
        `${e.error.code}: ${e.error.message}${e.error.retryable ? ' (retryable)' : ''}`,
      ),
    );
  if (e.previousAttempts?.length)
    parts.push(
      h(
        'div',
        { class: 'panel' },
        h('b', null, 'Earlier attempts: '),
        ...e.previousAttempts.map((/** @type {any} */ p) => h('div', null, `${p.code}: ${p.message}`)),
      ),
    );
  parts.push(rewardPanel(e));
  if (e.verifier) parts.push(verifierPanel(runId, e.verifier));
  if (e.answer !== undefined)
    parts.push(h('div', { class: 'panel' }, h('b', null, 'Answer: '), h('code', null, e.answer)));
  parts.push(h('h2', null, 'Transcript'), transcript(runId, e));
  app.replaceChildren(...parts);
}

/** @param {any} e */
function rewardPanel(e) {
  const components = Object.entries(e.reward?.components ?? {});
  const constraints = Object.entries(e.reward?.constraints ?? {});
  return h(
    'div',
    { class: 'panel', id: 'reward-breakdown' },
    h('b', null, 'Reward '),
    num(e.reward?.total),
    components.length
      ? h(
          'table',
          null,
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              h('th', null, 'component'),
              h('th', { class: 'num' }, 'value'),
              h('th', { class: 'num' }, 'weight'),
              h('th', null, 'note'),
            ),
          ),
          h(
            'tbody',
            null,
            ...components.map(([name, c]) =>
              h(
                'tr',
                null,
                h('td', null, name),
                h('td', { class: 'num' }, num(/** @type {any} */ (c).value)),
                h('td', { class: 'num' }, num(/** @type {any} */ (c).weight, 2)),
                h('td', null, /** @type {any} */ (c).note ?? ''),
              ),
            ),
            ...constraints.map(([name, c]) =>
              h(
                'tr',
                null,
                h('td', null, `constraint: ${name}`),
                h('td', { class: 'num' }, num(/** @type {any} */ (c).value)),
                h(
                  'td',
                  { class: 'num' },
                  /** @type {any} */ (c).limit === undefined
                    ? ''
                    : `limit ${num(/** @type {any} */ (c).limit)}`,
                ),
                h('td', null, ''),
              ),
            ),
          ),
        )
      : null,
  );
}

/** @param {string} runId @param {any} v */
function verifierPanel(runId, v) {
  const scores = Object.entries(v.scores ?? {});
  return h(
    'div',
    { class: 'panel', id: 'verifier' },
    h('b', null, 'Verifier '),
    `reward ${v.reward === null ? 'none' : num(v.reward)} · exit ${v.exitCode}${v.timedOut ? ' · timed out' : ''} · ${duration(v.durationMs)}${v.aggregate ? ` · ${v.aggregate}` : ''}`,
    v.error ? h('div', { class: 'neg' }, v.error) : null,
    scores.length
      ? h(
          'div',
          null,
          'scores: ',
          ...scores.map(([k, s]) => h('span', { class: 'tag' }, `${k}=${num(/** @type {number} */ (s))}`)),
        )
      : null,
    ...(v.warnings ?? []).map((/** @type {string} */ w) => h('div', { class: 'muted' }, `warning: ${w}`)),
    v.stdout ? h('div', null, h('div', { class: 'muted' }, 'stdout'), folded(v.stdout)) : null,
    v.stderr ? h('div', null, h('div', { class: 'muted' }, 'stderr'), folded(v.stderr)) : null,
    v.files?.length
      ? h(
          'div',
          null,
          'kept files: ',
          ...v.files.map((/** @type {any} */ f) =>
            h(
              'a',
              {
                class: 'tag',
                href: `/api/runs/${enc(runId)}/${f.path.split('/').map(encodeURIComponent).join('/')}`,
                target: '_blank',
              },
              `${f.source} (${int(f.bytes)} B)`,
            ),
          ),
        )
      : null,
    ...(v.filesNotes ?? []).map((/** @type {string} */ n) => h('div', { class: 'muted' }, n)),
    v.steps?.length
      ? h(
          'div',
          null,
          'steps: ',
          ...v.steps.map((/** @type {any} */ s) =>
            h('span', { class: 'tag' }, `${s.name}: ${s.outcome} ${s.reward === null ? '' : num(s.reward)}`),
          ),
        )
      : null,
  );
}

/**
 * The conversation in order; each assistant message carries its turn (rewards, return,
 * tokens, time) and a link to its token view when the turn is token-exact.
 * @param {string} runId
 * @param {any} e
 */
function transcript(runId, e) {
  let turn = 0;
  const box = h('div', { id: 'transcript' });
  for (const m of e.messages) {
    if (m.role === 'assistant') {
      const t = e.turns[turn];
      turn += 1;
      const info = t
        ? h(
            'span',
            { class: 'turn-info' },
            `turn ${t.index} · reward ${num(t.reward)}`,
            Object.keys(t.rewards ?? {}).length
              ? ` (${Object.entries(t.rewards)
                  .map(([k, v]) => `${k} ${num(/** @type {number} */ (v))}`)
                  .join(', ')})`
              : '',
            t.return !== undefined ? ` · return ${num(t.return)}` : '',
            t.usage ? ` · ${int(t.usage.promptTokens)} in / ${int(t.usage.completionTokens)} out` : '',
            t.costUsd ? ` · ${usd(t.costUsd)}` : '',
            ` · model ${duration(t.agentMs)} · tools ${duration(t.toolMs)}`,
            t.stopReason ? ` · ${t.stopReason}` : '',
            t.tokens
              ? h(
                  'a',
                  {
                    class: 'tag token-link',
                    href: `#/run/${enc(runId)}/episode/${enc(e.episodeId)}/tokens/${turn - 1}?attempt=${e.attempt}`,
                  },
                  `tokens ${t.tokens.completionLength}${t.tokens.driftAt !== undefined ? ' · drift' : ''}`,
                )
              : null,
            t.tokenExactUnavailable ? h('span', { class: 'tag' }, 'no token ids') : null,
          )
        : null;
      box.append(
        h(
          'div',
          { class: 'msg assistant', 'data-turn': t?.index },
          h('div', { class: 'who' }, 'assistant', info),
          m.reasoning?.text ? folded(m.reasoning.text, 'reasoning') : null,
          m.content ? folded(m.content) : null,
          ...(m.toolCalls ?? []).map((/** @type {any} */ c) =>
            h('pre', { class: 'call' }, `→ ${c.name}(${c.arguments})`),
          ),
        ),
      );
    } else {
      box.append(
        h(
          'div',
          { class: `msg ${m.role}${m.isError ? ' error' : ''}` },
          h(
            'div',
            { class: 'who' },
            m.role === 'tool' ? `tool · ${m.name}${m.isError ? ' · error' : ''}` : m.role,
          ),
          folded(m.content ?? ''),
          ...(m.images ?? []).map((/** @type {any} */ image) =>
            image.url
              ? h('img', {
                  class: 'shot',
                  src: image.url,
                  alt: `screenshot (${image.mimeType}, ${int(image.bytes)} B)`,
                  loading: 'lazy',
                })
              : // The record kept no bytes of it (over the episode's image budget).
                h(
                  'div',
                  { class: 'muted' },
                  `[image ${image.mimeType}, ${int(image.bytes)} B — not kept: ${image.omitted ?? 'omitted'}]`,
                ),
          ),
        ),
      );
    }
  }
  return box;
}

// ─── token view ────────────────────────────────────────────────────────────────

/** A colour for a logprob: green when the token was likely, red when it was not. @param {number} logprob */
function logprobColour(logprob) {
  const p = Math.exp(Math.max(-20, Math.min(0, logprob)));
  return `hsl(${Math.round(p * 120)}, 75%, ${88 - p * 8}%)`;
}

/**
 * @param {string} runId
 * @param {string} episodeId
 * @param {number} turn
 * @param {URLSearchParams} params
 * @param {() => boolean} still
 */
async function tokensPage(runId, episodeId, turn, params, still) {
  const attempt = params.get('attempt');
  const q = attempt ? `?attempt=${attempt}` : '';
  const [t, e] = await Promise.all([
    api(`/api/runs/${enc(runId)}/episodes/${enc(episodeId)}/turns/${turn}/tokens${q}`),
    api(`/api/runs/${enc(runId)}/episodes/${enc(episodeId)}${q}`),
  ]);
  if (!still()) return;
  document.title = `tokens of turn ${turn} · ${episodeId}`;
  const episodeLink = `#/run/${enc(runId)}/episode/${enc(episodeId)}${q}`;
  setCrumbs(
    h('a', { href: '#/' }, 'runs'),
    h('a', { href: `#/run/${enc(runId)}` }, runId),
    h('a', { href: episodeLink }, episodeId),
    h('span', null, `tokens of turn ${turn}`),
  );
  const exact = e.turns
    .map((/** @type {any} */ x, /** @type {number} */ i) => (x.tokens ? i : -1))
    .filter((/** @type {number} */ i) => i >= 0);
  const prompt = h('div', { class: 'tokens', id: 'prompt-tokens' });
  t.promptIds.forEach((/** @type {number} */ id, /** @type {number} */ i) => {
    if (i === t.driftAt)
      prompt.append(
        h(
          'span',
          {
            class: 'drift',
            id: 'drift',
            title: `the prompt differs from the previous turn's ids from here (index ${i})`,
          },
          `drift @${i}`,
        ),
      );
    prompt.append(
      h('span', { class: 'tok prompt', title: `prompt #${i} · id ${id} · not trained` }, String(id)),
    );
  });
  if (t.driftAt !== undefined && t.driftAt >= t.promptIds.length)
    prompt.append(h('span', { class: 'drift', id: 'drift' }, `drift @${t.driftAt} (prompt shorter)`));
  const completion = h('div', { class: 'tokens', id: 'completion-tokens' });
  t.completionIds.forEach((/** @type {number} */ id, /** @type {number} */ i) => {
    const logprob = t.completionLogprobs[i];
    const text = t.completionTexts?.[i];
    completion.append(
      h(
        'span',
        {
          class: 'tok completion',
          style: `background:${logprobColour(logprob)}`,
          title: `completion #${i} · id ${id} · logprob ${typeof logprob === 'number' ? logprob.toFixed(4) : '?'} · p ${typeof logprob === 'number' ? Math.exp(logprob).toFixed(3) : '?'} · trained`,
          'data-id': id,
          'data-logprob': logprob,
        },
        text !== undefined && text !== '' ? text : `⟨${id}⟩`,
      ),
    );
  });
  const meanLogprob = t.completionLogprobs.length
    ? t.completionLogprobs.reduce((/** @type {number} */ a, /** @type {number} */ b) => a + b, 0) /
      t.completionLogprobs.length
    : undefined;
  const nav = h(
    'div',
    { class: 'pager' },
    ...exact.map((/** @type {number} */ i) =>
      i === turn
        ? h('b', null, `turn ${i}`)
        : h('a', { href: `#/run/${enc(runId)}/episode/${enc(episodeId)}/tokens/${i}${q}` }, `turn ${i}`),
    ),
  );
  app.replaceChildren(
    h('h1', null, `Tokens of turn ${turn}`),
    h(
      'div',
      { class: 'meta' },
      `${e.taskId} · ${int(t.promptIds.length)} prompt tokens (${t.promptSource ?? 'source unknown'}) · ${int(t.completionIds.length)} completion tokens · logprobs ${t.logprobsMode ?? 'unknown'} · mean logprob ${num(meanLogprob)}`,
      t.driftAt !== undefined
        ? h('span', { class: 'neg' }, ` · drift at prompt index ${t.driftAt}`)
        : ' · no drift',
      t.completionTexts ? ' · decoded text' : ' · ids (the backend sent no text)',
    ),
    nav,
    h(
      'div',
      { class: 'legend' },
      h(
        'span',
        null,
        h('span', { class: 'swatch', style: 'background:#f1f2f4;border:1px solid #ccc' }),
        ' prompt (not trained, loss mask 0)',
      ),
      h(
        'span',
        null,
        h('span', {
          class: 'swatch',
          style: `background:linear-gradient(90deg, ${logprobColour(-6)}, ${logprobColour(-1)}, ${logprobColour(0)})`,
        }),
        ' completion (trained, loss mask 1), coloured by logprob: unlikely → likely',
      ),
      h(
        'span',
        null,
        h('span', { class: 'drift' }, 'drift'),
        ' where the prompt stops matching the previous turn',
      ),
    ),
    h('h2', null, 'Completion'),
    completion,
    h('h2', null, 'Prompt'),
    prompt,
  );
}

// ─── comparison ────────────────────────────────────────────────────────────────

/**
 * @param {string} a
 * @param {string | undefined} b
 * @param {() => boolean} still
 */
async function comparePage(a, b, still) {
  const list = await api('/api/runs?limit=200');
  if (!still()) return;
  setCrumbs(
    h('a', { href: '#/' }, 'runs'),
    h('a', { href: `#/run/${enc(a)}` }, a),
    h('span', null, 'compare'),
  );
  const picker = h(
    'select',
    { id: 'compare-b', 'aria-label': 'second run' },
    h('option', { value: '' }, 'choose a run…'),
    ...list.runs
      .filter((/** @type {any} */ r) => r.id !== a)
      .map((/** @type {any} */ r) =>
        h('option', { value: r.id, selected: r.id === b }, `${r.id} (${r.agent || 'agent?'})`),
      ),
  );
  picker.addEventListener('change', () => {
    const value = /** @type {HTMLSelectElement} */ (picker).value;
    if (value) location.hash = `#/compare/${enc(a)}/${enc(value)}`;
  });
  if (!b) {
    app.replaceChildren(h('h1', null, `Compare ${a} with…`), picker);
    return;
  }
  const data = await api(`/api/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
  if (!still()) return;
  document.title = `${a} vs ${b} · paddock view`;
  const cells = (
    /** @type {any} */ x,
    /** @type {any} */ y,
    /** @type {(t: any) => number | undefined} */ get,
    /** @type {(v: number | undefined) => string} */ show,
    /** @type {number} */ digits,
    lowerIsBetter = false,
  ) => {
    const va = x ? get(x) : undefined;
    const vb = y ? get(y) : undefined;
    return [
      h('td', { class: 'num' }, show(va)),
      h('td', { class: 'num' }, show(vb)),
      h(
        'td',
        { class: 'num' },
        typeof va === 'number' && typeof vb === 'number' ? diff(vb - va, digits, lowerIsBetter) : '–',
      ),
    ];
  };
  const tokens = (/** @type {any} */ t) => (t.usage?.promptTokens ?? 0) + (t.usage?.completionTokens ?? 0);
  const row = (
    /** @type {string} */ label,
    /** @type {any} */ x,
    /** @type {any} */ y,
    /** @type {boolean} */ total,
  ) =>
    h(
      'tr',
      { class: total ? 'total' : null, 'data-task': total ? null : label },
      h('td', null, label),
      ...cells(
        x,
        y,
        (t) => t.meanReward,
        (v) => num(v),
        3,
      ),
      ...cells(
        x,
        y,
        (t) => t.passRate,
        (v) => num(v, 2),
        2,
      ),
      ...cells(x, y, tokens, (v) => int(v), 0, true),
      ...cells(
        x,
        y,
        (t) => t.costUsd,
        (v) => usd(v),
        4,
        true,
      ),
      h('td', { class: 'num' }, `${x ? int(x.episodes) : '–'} / ${y ? int(y.episodes) : '–'}`),
    );
  const group = (/** @type {string} */ title) => h('th', { class: 'num', colspan: 3 }, title);
  const sub = () => [
    h('th', { class: 'num' }, 'A'),
    h('th', { class: 'num' }, 'B'),
    h('th', { class: 'num' }, 'B − A'),
  ];
  app.replaceChildren(
    h('h1', null, 'Compare runs'),
    h(
      'div',
      { class: 'meta' },
      'A: ',
      h('a', { href: `#/run/${enc(a)}` }, a),
      ` (${data.a.agent || 'agent?'}, ${int(data.a.done)} episodes) · B: `,
      picker,
      ` (${data.b.agent || 'agent?'}, ${int(data.b.done)} episodes)`,
    ),
    h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        { id: 'compare' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            h('th', null, ''),
            group('mean reward'),
            group('success'),
            group('tokens'),
            group('cost'),
            h('th', { class: 'num' }, 'episodes'),
          ),
          h(
            'tr',
            null,
            h('th', null, 'task'),
            ...sub(),
            ...sub(),
            ...sub(),
            ...sub(),
            h('th', { class: 'num' }, 'A / B'),
          ),
        ),
        h(
          'tbody',
          null,
          ...data.tasks.map((/** @type {any} */ t) => row(t.task, t.a, t.b, false)),
          row('all tasks', data.total.a, data.total.b, true),
        ),
      ),
    ),
  );
}

// ─── training ──────────────────────────────────────────────────────────────────

/** @param {any[]} rows @param {string} type @param {string} key */
function series(rows, type, key) {
  return rows
    .filter((r) => r.type === type && typeof r[key] === 'number')
    .map((r) => ({ x: r.step, y: r[key] }));
}

/** @param {string} id @param {() => boolean} still */
async function trainingPage(id, still) {
  const data = await api(`/api/trainings/${enc(id)}`);
  if (!still()) return;
  document.title = `${id} · training · paddock view`;
  setCrumbs(h('a', { href: '#/' }, 'runs'), h('span', null, `training ${id}`));
  const rows = data.rows;
  const charts = h(
    'div',
    { class: 'charts', id: 'curves' },
    lineChart(
      'Reward and success',
      [
        { name: 'train reward', color: '#1f77b4', points: series(rows, 'train', 'reward_mean') },
        {
          name: 'train pass rate',
          color: '#7fb2e5',
          points: series(rows, 'train', 'pass_rate'),
          dashed: true,
        },
        { name: 'eval success', color: '#d62728', points: series(rows, 'eval', 'success') },
        { name: 'eval reward', color: '#ff7f0e', points: series(rows, 'eval', 'reward_mean'), dashed: true },
        {
          name: 'eval success (greedy)',
          color: '#e377c2',
          points: series(rows, 'eval', 'success_greedy'),
          dashed: true,
        },
      ],
      { yRange: [0, 1] },
    ),
    lineChart('Loss', [
      { name: 'train loss', color: '#8c564b', points: series(rows, 'train', 'loss') },
      { name: 'SFT loss', color: '#bcbd22', points: series(rows, 'sft', 'loss') },
    ]),
    lineChart('Entropy and KL (per token)', [
      { name: 'entropy', color: '#2ca02c', points: series(rows, 'train', 'entropy') },
      { name: 'KL to reference', color: '#9467bd', points: series(rows, 'train', 'kl') },
    ]),
  );
  const summary = data.summary
    ? h(
        'div',
        { class: 'panel' },
        ...Object.entries(data.summary)
          .filter(([, v]) => typeof v !== 'object' || v === null)
          .map(([k, v]) =>
            h(
              'span',
              { class: 'tag' },
              `${k}: ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(3)) : String(v)}`,
            ),
          ),
      )
    : h('div', { class: 'muted' }, 'no summary.json yet (training still running, or stopped early)');
  app.replaceChildren(
    h('h1', null, `Training ${id}`),
    h(
      'div',
      { class: 'meta' },
      `${rows.filter((/** @type {any} */ r) => r.type === 'train').length} RL steps · ${rows.filter((/** @type {any} */ r) => r.type === 'eval').length} evaluations · ${rows.filter((/** @type {any} */ r) => r.type === 'sft').length} SFT steps`,
    ),
    summary,
    charts,
    h('h2', null, 'Episodes of each step'),
    h(
      'table',
      { id: 'step-runs' },
      h(
        'thead',
        null,
        h('tr', null, h('th', null, 'run'), h('th', null, 'what'), h('th', { class: 'num' }, 'step')),
      ),
      h(
        'tbody',
        null,
        ...data.runs.map((/** @type {any} */ r) =>
          h(
            'tr',
            null,
            h('td', null, h('a', { href: `#/run/${enc(r.id)}` }, r.name)),
            h('td', null, r.kind),
            h('td', { class: 'num' }, r.step ?? '–'),
          ),
        ),
      ),
    ),
  );
}

window.addEventListener('hashchange', () => void render());
void render();
