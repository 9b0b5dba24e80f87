import { describe, expect, it } from 'vitest';
import {
  describeRef,
  formatObservation,
  parseSnapshot,
  summarizeActionError,
  trimSnapshot,
} from '../../../sandboxes/browser/index.ts';

/** A long page: a heading above the viewport, then `count` paragraphs 30 px apart starting at `firstY`. */
function longPage(count: number, firstY: number): string {
  const lines = [
    `- generic [ref=e1] [box=0,${firstY - 100},800,${count * 30 + 100}]:`,
    `  - heading "Catalogue" [level=1] [ref=e2] [box=0,${firstY - 100},800,40]`,
    `  - list [ref=e3] [box=0,${firstY},800,${count * 30}]:`,
  ];
  for (let index = 0; index < count; index++) {
    lines.push(`    - listitem [ref=e${index + 4}] [box=0,${firstY + index * 30},800,30]: Item ${index}`);
  }
  return lines.join('\n');
}

describe('parseSnapshot', () => {
  it('takes the box annotation off each line and keeps indentation', () => {
    expect(parseSnapshot('- generic [ref=e1] [box=8,-12.5,784,600]:\n  - text: hi')).toEqual([
      { text: '- generic [ref=e1]:', indent: 0, box: { x: 8, y: -12.5, width: 784, height: 600 } },
      { text: '  - text: hi', indent: 2 },
    ]);
  });
});

describe('trimSnapshot', () => {
  it('shows a page that fits whole, without boxes', () => {
    const trimmed = trimSnapshot('- button "OK" [ref=e1] [box=1,2,3,4]', { maxChars: 1_000 });
    expect(trimmed).toMatchObject({ text: '- button "OK" [ref=e1]', trimmed: false, totalLines: 1 });
  });

  it('starts a long page at the viewport, keeps the ancestors and counts what it left out', () => {
    // Scrolled so that item 50 is at the top of the viewport.
    const trimmed = trimSnapshot(longPage(200, -50 * 30), { maxChars: 1_500 });
    expect(trimmed.trimmed).toBe(true);
    const lines = trimmed.text.split('\n');
    expect(lines[0]).toBe('- generic [ref=e1]:');
    expect(lines[1]).toBe('  - … 1 line not shown');
    expect(lines[2]).toBe('  - list [ref=e3]:');
    expect(lines[3]).toBe('    - … 50 lines not shown');
    expect(lines[4]).toBe('    - listitem [ref=e54]: Item 50');
    expect(lines[lines.length - 1]).toMatch(/^ {4}- … \d+ lines not shown$/);
    expect(trimmed.hiddenAbove).toBe(51);
    expect(trimmed.hiddenBelow).toBe(trimmed.totalLines - trimmed.shownLines - 51);
    expect(trimmed.text.length).toBeLessThanOrEqual(1_500);
  });

  it('fills the budget upwards when the end of the page is in view', () => {
    const trimmed = trimSnapshot(longPage(200, -195 * 30), { maxChars: 1_500 });
    expect(trimmed.hiddenBelow).toBe(0);
    expect(trimmed.text.endsWith('Item 199')).toBe(true);
    expect(trimmed.shownLines).toBeGreaterThan(10);
  });

  it('cuts a single very long line', () => {
    const trimmed = trimSnapshot(`- paragraph: ${'x'.repeat(1_000)}`, { maxChars: 5_000, maxLineChars: 50 });
    expect(trimmed.text).toHaveLength(50);
    expect(trimmed.text.endsWith('…')).toBe(true);
  });

  it('places the lines inside an iframe by the iframe, not by their own boxes', () => {
    const snapshot = [
      '- generic [ref=e1] [box=0,-2000,800,4000]:',
      ...Array.from(
        { length: 40 },
        (_, i) => `  - paragraph [ref=e${i + 2}] [box=0,${-2000 + i * 40},800,40]: above ${i}`,
      ),
      '  - iframe [ref=e90] [box=0,100,400,300]:',
      '    - button "Inner" [ref=f1e1] [box=5,5,50,20]',
      '  - paragraph [ref=e91] [box=0,420,800,40]: below',
    ].join('\n');
    const trimmed = trimSnapshot(snapshot, { maxChars: 400 });
    expect(trimmed.text).toContain('iframe [ref=e90]');
    expect(trimmed.text).not.toContain('above 0');
  });
});

describe('formatObservation', () => {
  it('puts the result, URL, title, events and page in that order', () => {
    const text = formatObservation({
      result: { ok: false, text: 'element e4 is not on the page any more' },
      url: 'http://127.0.0.1:1/a',
      title: '',
      events: ['alert dialog "Hi" (accepted)'],
      loading: true,
      snapshot: {
        text: '- button "OK" [ref=e1]',
        trimmed: false,
        totalLines: 1,
        shownLines: 1,
        hiddenAbove: 0,
        hiddenBelow: 0,
      },
    });
    expect(text).toBe(
      [
        'Error: element e4 is not on the page any more',
        'URL: http://127.0.0.1:1/a',
        'Title: (none)',
        'The page is still loading.',
        'Events:',
        '- alert dialog "Hi" (accepted)',
        'Page:',
        '- button "OK" [ref=e1]',
      ].join('\n'),
    );
  });

  it('says how a trimmed page was cut, and keeps only the latest events', () => {
    const text = formatObservation({
      url: 'u',
      title: 't',
      events: Array.from({ length: 12 }, (_, i) => `event ${i}`),
      snapshot: {
        text: '…',
        trimmed: true,
        totalLines: 300,
        shownLines: 100,
        hiddenAbove: 20,
        hiddenBelow: 180,
      },
    });
    expect(text).toContain('- (4 earlier events not shown)');
    expect(text).not.toContain('event 3\n');
    expect(text).toContain('event 11');
    expect(text).toContain(
      'Page (trimmed to the viewport: 100 of 300 lines shown; 20 above (scroll up), 180 below (scroll down)):',
    );
  });

  it('reports a snapshot that could not be taken', () => {
    expect(
      formatObservation({ url: 'u', title: 't', events: [], snapshot: { error: 'the page did not answer' } }),
    ).toContain('Page snapshot unavailable: the page did not answer');
  });
});

describe('summarizeActionError', () => {
  it('keeps the first line and the reason from the call log', () => {
    const message = [
      'locator.click: Timeout 3000ms exceeded.',
      'Call log:',
      "  - waiting for locator('aria-ref=e12')",
      '    - locator resolved to <button>Download</button>',
      '  - attempting click action',
      '    2 × waiting for element to be visible, enabled and stable',
      '      - element is visible, enabled and stable',
      '      - scrolling into view if needed',
      '      - <div class="overlay">…</div> intercepts pointer events',
    ].join('\n');
    expect(summarizeActionError(message)).toBe(
      'Timeout 3000ms exceeded. (<div class="overlay">…</div> intercepts pointer events)',
    );
  });

  it('names refs as elements and strips terminal colours', () => {
    expect(
      summarizeActionError(
        "\u001b[2mlocator.fill: Error: locator('aria-ref=e3') is not an <input>\u001b[22m",
      ),
    ).toBe('element e3 is not an <input>');
  });

  it('lists the first matches of a strict-mode violation', () => {
    const message = [
      "locator.click: Error: strict mode violation: locator('button') resolved to 3 elements:",
      "    1) <button>A</button> aka getByRole('button', { name: 'A' })",
      "    2) <button>B</button> aka getByRole('button', { name: 'B' })",
    ].join('\n');
    expect(summarizeActionError(message)).toMatch(
      /^strict mode violation: .* resolved to 3 elements: \(first matches: 1\) <button>A/,
    );
  });
});

describe('describeRef', () => {
  it('gives the role and name the snapshot shows for a ref', () => {
    const snapshot =
      '- generic [ref=e1]:\n  - button "Buy now" [ref=e12] [cursor=pointer]\n  - textbox "Email" [ref=e13]: a@b.c';
    expect(describeRef(snapshot, 'e12')).toBe('button "Buy now"');
    expect(describeRef(snapshot, 'e13')).toBe('textbox "Email"');
    expect(describeRef(snapshot, 'e1')).toBe('generic');
    expect(describeRef(snapshot, 'e99')).toBeUndefined();
  });
});
