/**
 * The GUI-agent parts of the `browser:` section and the pure helpers behind them: defaults
 * that follow the action space, `grounding` and `uploads` checks, the marks a snapshot
 * gives, and how a turn's coordinate actions are scored against a sequence of targets.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isPaddockError } from '../../../harness/index.ts';
import { GroundingTurnScorer, type PointingAction } from '../../../sandboxes/browser/grounding.ts';
import { browserTaskExtension, resolveBrowserConfig } from '../../../sandboxes/browser/index.ts';
import { marksOf } from '../../../sandboxes/browser/marks.ts';
import { validateTasks } from '../../../tasks/index.ts';

function issues(section: unknown): string[] {
  const parsed = browserTaskExtension.safeParse(section);
  return parsed.success
    ? []
    : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

/** The message of the CONFIG_INVALID error `resolveBrowserConfig` throws for `section`. */
function configError(section: unknown): string {
  try {
    resolveBrowserConfig(section, '/t');
  } catch (error) {
    expect(isPaddockError(error, 'CONFIG_INVALID')).toBe(true);
    return (error as Error).message;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('defaults that follow the action space', () => {
  it('shows the snapshot and no screenshot to an agent that acts by ref, and the reverse to one that points', () => {
    const shown = (actions?: string) => {
      const config = resolveBrowserConfig(
        { url: 'http://127.0.0.1:8080', ...(actions === undefined ? {} : { actions }) },
        '/t',
      );
      return { actions: config.actions, screenshot: config.screenshot, snapshot: config.snapshot };
    };
    expect(shown()).toEqual({ actions: 'refs', screenshot: false, snapshot: true });
    expect(shown('refs')).toEqual({ actions: 'refs', screenshot: false, snapshot: true });
    expect(shown('both')).toEqual({ actions: 'both', screenshot: false, snapshot: true });
    expect(shown('coordinates')).toEqual({ actions: 'coordinates', screenshot: true, snapshot: false });
    expect(shown('none')).toEqual({ actions: 'none', screenshot: true, snapshot: false });
  });

  it('keeps what the task states over the defaults', () => {
    const config = resolveBrowserConfig(
      { url: 'http://127.0.0.1:8080', actions: 'coordinates', screenshot: false, snapshot: true },
      '/t',
    );
    expect(config).toMatchObject({ screenshot: false, snapshot: true });
    expect(
      resolveBrowserConfig({ url: 'http://127.0.0.1:8080', screenshot: true, snapshot: false }, '/t'),
    ).toMatchObject({ actions: 'refs', screenshot: true, snapshot: false });
  });

  it('fills the other GUI defaults, and leaves screenshot and snapshot to the action space', () => {
    const parsed = browserTaskExtension.parse({ site: 'site/' });
    expect(parsed).toMatchObject({ actions: 'refs', coordinates: 'css', marks: false, uploads: [] });
    expect(parsed).not.toHaveProperty('screenshot');
    expect(parsed).not.toHaveProperty('snapshot');
    expect(parsed).not.toHaveProperty('grounding');
    const config = resolveBrowserConfig({ site: 'site/' }, '/t');
    expect(config).toMatchObject({ coordinates: 'css', marks: false, uploads: [] });
    expect(config.grounding).toBeUndefined();
  });

  it('refuses unknown action spaces and coordinate systems, naming the field', () => {
    expect(issues({ site: 'site/', actions: 'pixels' })[0]).toMatch(/^actions: /);
    expect(issues({ site: 'site/', coordinates: 'percent' })[0]).toMatch(/^coordinates: /);
    expect(issues({ site: 'site/', marks: 'yes' })[0]).toMatch(/^marks: /);
    expect(issues({ site: 'site/', popups: 'windows' })[0]).toMatch(/^popups: /);
    expect(issues({ site: 'site/', dialogs: 'ignore' })[0]).toMatch(/^dialogs: /);
  });
});

describe('grounding', () => {
  it('resolves one target or a list of targets, with the rewards by kind', () => {
    const one = resolveBrowserConfig(
      {
        site: 'site/',
        grounding: { target: { selector: '#buy' }, rewards: { hit: 1, gaussian_point: 0.5 } },
      },
      '/t',
    );
    expect(one.grounding).toEqual({
      targets: [{ selector: '#buy' }],
      rewards: { hit: 1, gaussian_point: 0.5 },
    });
    const many = resolveBrowserConfig(
      {
        site: 'site/',
        grounding: {
          targets: [{ role: 'button', name: 'Buy' }, { box: [10, 20, 30, 40] }],
        },
      },
      '/t',
    );
    expect(many.grounding).toEqual({
      targets: [{ role: 'button', name: 'Buy' }, { box: [10, 20, 30, 40] }],
      rewards: {},
    });
  });

  it('refuses both target and targets, or neither', () => {
    expect(
      issues({
        site: 'site/',
        grounding: { target: { selector: '#a' }, targets: [{ selector: '#b' }] },
      }),
    ).toEqual(['grounding.target: expected exactly one of target or targets']);
    expect(issues({ site: 'site/', grounding: { rewards: { hit: 1 } } })).toEqual([
      'grounding.target: expected exactly one of target or targets',
    ]);
    expect(issues({ site: 'site/', grounding: { targets: [] } })[0]).toMatch(/^grounding\.targets: /);
    expect(
      configError({
        site: 'site/',
        grounding: { target: { selector: '#a' }, targets: [{ selector: '#b' }] },
      }),
    ).toMatch(/grounding\.target/);
  });

  it('refuses an empty or inverted box, naming the target', () => {
    for (const box of [
      [10, 10, 5, 20],
      [10, 30, 20, 20],
      [10, 10, 10, 20],
    ]) {
      expect(issues({ site: 'site/', grounding: { target: { box } } }), JSON.stringify(box)).toEqual([
        'grounding.target.box: expected [x1, y1, x2, y2] with x2 > x1 and y2 > y1',
      ]);
    }
    expect(
      issues({ site: 'site/', grounding: { targets: [{ selector: '#a' }, { box: [0, 0, -1, 5] }] } }),
    ).toEqual(['grounding.targets.1.box: expected [x1, y1, x2, y2] with x2 > x1 and y2 > y1']);
    expect(issues({ site: 'site/', grounding: { target: { box: [1, 2, 3] } } })[0]).toMatch(
      /^grounding\.target(\.box)?: /,
    );
    expect(issues({ site: 'site/', grounding: { target: { text: 'Buy' } } })[0]).toMatch(
      /^grounding\.target: expected \{ selector \}, \{ role, name \} or \{ box: \[x1, y1, x2, y2\] \}/,
    );
  });

  it('refuses an unknown reward kind and a weight that is not a finite number, naming the field', () => {
    const unknown = issues({
      site: 'site/',
      grounding: { target: { selector: '#a' }, rewards: { hits: 1 } },
    });
    expect(unknown).toHaveLength(1);
    expect(unknown[0]).toMatch(/^grounding\.rewards(\.hits)?: .*hits/);
    expect(
      issues({ site: 'site/', grounding: { target: { selector: '#a' }, rewards: { hit: 'much' } } })[0],
    ).toMatch(/^grounding\.rewards\.hit: /);
    expect(
      issues({ site: 'site/', grounding: { target: { selector: '#a' }, rewards: { iou: Infinity } } })[0],
    ).toMatch(/^grounding\.rewards\.iou: /);
    expect(
      configError({ site: 'site/', grounding: { target: { selector: '#a' }, rewards: { hits: 1 } } }),
    ).toMatch(/grounding\.rewards/);
  });
});

describe('uploads', () => {
  it('resolves upload names against the task folder', () => {
    expect(
      resolveBrowserConfig({ site: 'site/', uploads: ['files/cv.pdf', 'photo.png'] }, '/tasks/apply').uploads,
    ).toEqual([
      { name: 'files/cv.pdf', path: '/tasks/apply/files/cv.pdf' },
      { name: 'photo.png', path: '/tasks/apply/photo.png' },
    ]);
  });

  it('refuses a path outside the task folder, naming the entry', () => {
    expect(
      issues({ site: 'site/', uploads: ['ok.txt', '../secret.txt', '/etc/passwd', 'a/../../b'] }),
    ).toEqual([
      'uploads.1: expected a path inside the task folder (no "..")',
      'uploads.2: expected a path relative to the task folder (not absolute)',
      'uploads.3: expected a path inside the task folder (no "..")',
    ]);
    expect(configError({ site: 'site/', uploads: ['../secret.txt'] })).toMatch(/uploads\.0/);
  });

  it('is checked by the loader: a missing file, and a link leading out of the task folder, are problems', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'paddock-gui-uploads-'));
    const outside = path.join(root, 'outside.txt');
    writeFileSync(outside, "not the task's");
    const write = (name: string, files: Record<string, string>, uploads: string) => {
      mkdirSync(path.join(root, 'suite', name), { recursive: true });
      writeFileSync(
        path.join(root, 'suite', name, 'task.yaml'),
        `instruction: Upload it.\ntools: [submit]\nverifier: false\nbrowser:\n  url: http://127.0.0.1:8080\n  uploads: ${uploads}\n`,
      );
      for (const [file, content] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(root, 'suite', name, file)), { recursive: true });
        writeFileSync(path.join(root, 'suite', name, file), content);
      }
    };
    write('good', { 'files/cv.txt': 'me' }, '[files/cv.txt]');
    write('missing', {}, '[files/cv.txt]');
    write('linked', {}, '[files/link.txt]');
    mkdirSync(path.join(root, 'suite', 'linked', 'files'));
    symlinkSync(outside, path.join(root, 'suite', 'linked', 'files', 'link.txt'));

    try {
      const { tasks, problems } = await validateTasks(path.join(root, 'suite'), {
        extensions: { browser: browserTaskExtension },
      });
      expect(tasks.map((task) => task.id)).toEqual(['suite/good']);
      const shown = problems.map((problem) => `${path.basename(path.dirname(problem.file))} ${problem.path}`);
      expect(shown.sort()).toEqual(['linked browser.uploads.0', 'missing browser.uploads.0']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('marksOf', () => {
  const viewport = { width: 1280, height: 720 };
  const snapshot = [
    '- generic [ref=e1] [box=0,0,1280,720]:',
    '  - heading "Shop" [level=1] [ref=e2] [box=8,8,300,40]',
    '  - button "Buy" [ref=e3] [cursor=pointer] [box=10,60,80,30]',
    '  - link "Help" [ref=e4] [cursor=pointer] [box=100,60,40,20]:',
    '    - /url: /help',
    '  - textbox "Name" [ref=e5] [box=1270,700,100,30]',
    '  - button "Below" [ref=e6] [box=10,800,80,30]',
    '  - button "Above" [ref=e7] [box=10,-50,80,30]',
    '  - button "Flat" [ref=e8] [box=10,100,0,30]',
    '  - checkbox "Agree" [checked] [ref=e9] [box=10,140,16,16]',
    '  - paragraph [ref=e10] [box=10,170,400,20]: Plain text',
    '  - button "Unplaced" [ref=e11]',
    '  - iframe [ref=e12] [box=0,200,400,300]:',
    '    - button "Inner" [ref=f1e1] [box=5,5,50,20]',
    '  - button "Right edge" [ref=e13] [box=1280,10,50,20]',
    '  - button "Half above" [ref=e14] [box=10,-10,80,30]',
    '  - combobox "Size" [ref=e15] [box=500.5,60.25,120,24.5]',
  ].join('\n');

  it('marks the interactive elements that show in the viewport, with their refs and boxes', () => {
    expect(marksOf(snapshot, viewport)).toEqual([
      { ref: 'e3', x: 10, y: 60, width: 80, height: 30 },
      { ref: 'e4', x: 100, y: 60, width: 40, height: 20 },
      // Partly inside the viewport.
      { ref: 'e5', x: 1270, y: 700, width: 100, height: 30 },
      { ref: 'e9', x: 10, y: 140, width: 16, height: 16 },
      { ref: 'e14', x: 10, y: -10, width: 80, height: 30 },
      { ref: 'e15', x: 500.5, y: 60.25, width: 120, height: 24.5 },
    ]);
  });

  it('marks nothing in an empty snapshot or a viewport that shows none of it', () => {
    expect(marksOf('', viewport)).toEqual([]);
    expect(marksOf(snapshot, { width: 5, height: 5 })).toEqual([]);
  });
});

describe('GroundingTurnScorer', () => {
  const first = { x1: 0, y1: 0, x2: 100, y2: 100 };
  const second = { x1: 200, y1: 200, x2: 300, y2: 300 };
  const action = (
    x: number,
    y: number,
    targets: PointingAction['targets'] = [first, second],
    turnIndex = 0,
  ): PointingAction => ({ turnIndex, tool: 'browser_click_at', point: { x, y }, targets });

  it('scores 0 for a turn without coordinate actions', () => {
    expect(new GroundingTurnScorer('hit').score([])).toBe(0);
    expect(new GroundingTurnScorer('gaussian_point').score([])).toBe(0);
  });

  it('scores each action against the first target not hit yet; a hit moves on to the next', () => {
    const scorer = new GroundingTurnScorer('hit');
    // A miss, then a hit on the first target: the mean of the turn.
    expect(scorer.score([action(150, 150), action(50, 50)])).toBe(0.5);
    // The first target again: it is done, the second is current now.
    expect(scorer.score([action(50, 50)])).toBe(0);
    expect(scorer.score([action(250, 250)])).toBe(1);
    // Past the last target, it stays the one scored.
    expect(scorer.score([action(250, 250), action(50, 50)])).toBe(0.5);
  });

  it('moves on within a turn too', () => {
    const scorer = new GroundingTurnScorer('hit');
    expect(scorer.score([action(50, 50), action(250, 250)])).toBe(1);
  });

  it("keeps its place between turns, but each episode's scorer starts at the first target", () => {
    const one = new GroundingTurnScorer('hit');
    one.score([action(50, 50)]);
    expect(one.score([action(50, 50)])).toBe(0);
    expect(new GroundingTurnScorer('hit').score([action(50, 50)])).toBe(1);
  });

  it("scores against each action's own boxes, measured before it", () => {
    const scorer = new GroundingTurnScorer('hit');
    const moved = { x1: 500, y1: 500, x2: 600, y2: 600 };
    expect(scorer.score([action(550, 550, [moved, second])])).toBe(1);
    expect(scorer.score([action(550, 550, [moved, second])])).toBe(0);
  });

  it('counts an action whose target was not on the page as 0 in the mean', () => {
    const scorer = new GroundingTurnScorer('hit');
    expect(scorer.score([action(50, 50, [undefined, second]), action(50, 50)])).toBe(0.5);
  });

  it('averages the Gaussian point reward with gaussian_point, and moves on by hits', () => {
    const scorer = new GroundingTurnScorer('gaussian_point');
    // Centre: 1; 25 px right of the centre of a 100 px box (σ = 50): exp(−½·(25/50)²).
    const beside = Math.exp(-0.5 * (25 / 50) ** 2);
    expect(scorer.score([action(50, 50)])).toBe(1);
    // The first target was hit: the second is scored now.
    expect(scorer.score([action(275, 250)])).toBeCloseTo(beside, 12);
    const far = new GroundingTurnScorer('gaussian_point').score([action(150, 50), action(50, 50)]);
    expect(far).toBeCloseTo((Math.exp(-0.5 * 2 ** 2) + 1) / 2, 12);
  });
});
