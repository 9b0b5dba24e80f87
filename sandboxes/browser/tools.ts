/**
 * The browser tools an agent calls. Every one acts on the page the agent sees, waits for
 * the page to settle, and returns the new observation (URL, title, events, snapshot,
 * optionally a screenshot); a failed action returns the same observation with `isError`.
 *
 * Elements are named by `ref` — `e12` from the latest snapshot, stable while the element
 * lives and keeps its role and name — or by `selector` (CSS, or Playwright's `role=button
 * [name="Buy"]`, `text=…`), which reference solutions written ahead of time use. A ref
 * that went stale, or a selector matching no element or several, is an observation.
 */
import { z } from 'zod';
import { defineTool, type Tool } from '../../harness/index.ts';
import { resolveGotoTarget } from './origins.ts';
import { SCROLL_ELEMENT, scrollPageScript } from './page-functions.ts';
import { coordinateTools, dialogTool, tabsTool, uploadTool } from './gui-tools.ts';
import {
  ONE_TARGET,
  amountField,
  directionField,
  exactlyOneTarget,
  refField,
  scrollDelta,
  selectorField,
} from './tool-args.ts';
import { ActionRefused, type BrowserSession } from './session.ts';

/** Tool names, all prefixed `browser_`. */
export const BROWSER_TOOL_NAMES = [
  'browser_click',
  'browser_fill',
  'browser_press',
  'browser_select',
  'browser_check',
  'browser_hover',
  'browser_scroll',
  'browser_goto',
  'browser_back',
  'browser_wait_for',
  'browser_snapshot',
  'browser_click_at',
  'browser_hover_at',
  'browser_drag',
  'browser_scroll_at',
  'browser_type',
  'browser_tabs',
  'browser_dialog',
  'browser_upload',
] as const;

/**
 * The browser tools of one session, for the task's action space: by element (`refs`), by
 * point of the screenshot (`coordinates`: the key, navigation and observation tools take
 * no element there), both, or none; plus tabs, dialogs and uploads when the task has them.
 */
export function browserTools(session: BrowserSession): Tool[] {
  const { actions, popups, dialogs, uploads } = session.config;
  if (actions === 'none') return [];
  const byElement = elementTools(session);
  const named = (names: readonly string[]) => byElement.filter((tool) => names.includes(tool.name));
  const tools =
    actions === 'refs'
      ? byElement
      : actions === 'both'
        ? [...byElement, ...coordinateTools(session)]
        : [
            ...coordinateTools(session),
            keyTool(session),
            ...named(['browser_goto', 'browser_back']),
            textWaitTool(session),
            ...named(['browser_snapshot']),
          ];
  if (popups === 'tabs') tools.push(tabsTool(session));
  if (dialogs === 'agent') tools.push(dialogTool(session));
  if (uploads.length > 0) tools.push(uploadTool(session));
  return tools;
}

/** `browser_press` without an element: the key goes to whatever has focus. */
function keyTool(session: BrowserSession): Tool {
  return defineTool({
    name: 'browser_press',
    description:
      'Press a key or key combination (Enter, Tab, Escape, ArrowDown, Control+A…) on whatever has focus.',
    args: z.strictObject({
      key: z
        .string()
        .min(1)
        .describe('Key name as in KeyboardEvent.key, with modifiers joined by +, e.g. "Shift+Tab".'),
    }),
    execute: (args, context) =>
      session.act(context.signal, async (page) => {
        await page.keyboard.press(args.key);
        return `Pressed ${args.key}.`;
      }),
  });
}

/** `browser_wait_for` by text only. */
function textWaitTool(session: BrowserSession): Tool {
  return defineTool({
    name: 'browser_wait_for',
    description:
      'Wait until a text appears on the page, or with gone: true until it disappears. Use when the page is still loading or updating.',
    args: z.strictObject({
      text: z.string().min(1).describe('Text to wait for (case-insensitive, substring).'),
      gone: z.boolean().optional().describe('Wait for it to disappear instead. Default false.'),
      timeout_sec: z.number().positive().max(30).optional().describe('Longest wait in seconds. Default 5.'),
    }),
    execute: (args, context) => {
      const timeoutMs = Math.max(1, Math.round((args.timeout_sec ?? 5) * 1000));
      return session.act(
        context.signal,
        async (page) => {
          await page
            .getByText(args.text)
            .first()
            .waitFor({ state: args.gone ? 'hidden' : 'visible', timeout: timeoutMs, signal: context.signal });
          return `${JSON.stringify(args.text)} ${args.gone ? 'is gone' : 'is there'}.`;
        },
        { timeoutMs: Math.max(timeoutMs, session.config.actionTimeoutMs) + 2_000 },
      );
    },
  });
}

/** The tools that name elements by ref or selector (and the navigation and observation tools). */
function elementTools(session: BrowserSession): Tool[] {
  const timeout = () => session.config.actionTimeoutMs;

  const click = defineTool({
    name: 'browser_click',
    description:
      'Click an element (by ref from the page snapshot, or by selector). Returns the page after the click.',
    args: z
      .strictObject({
        ref: refField,
        selector: selectorField,
        button: z.enum(['left', 'right', 'middle']).optional().describe('Mouse button. Default left.'),
        double: z.boolean().optional().describe('Double-click instead. Default false.'),
      })
      .refine(exactlyOneTarget, ONE_TARGET),
    execute: (args, context) =>
      session.act(context.signal, async (page) => {
        const { locator, label, state } = await session.locate(page, args);
        const options = {
          timeout: timeout(),
          signal: context.signal,
          ...(args.button ? { button: args.button } : {}),
          // The element was just seen visible, enabled, in view and not covered: click it
          // at once. Otherwise Playwright waits for it to become actionable, or says why not.
          ...(state === 'ok' ? { force: true } : {}),
        };
        if (args.double) await locator.dblclick(options);
        else await locator.click(options);
        return `${args.double ? 'Double-clicked' : 'Clicked'} ${label}.`;
      }),
  });

  const fill = defineTool({
    name: 'browser_fill',
    description:
      'Replace the text of an input, textarea or editable element with `text`; with submit: true, press Enter afterwards.',
    args: z
      .strictObject({
        ref: refField,
        selector: selectorField,
        text: z.string().describe('The text to type into the field (replaces what is there).'),
        submit: z.boolean().optional().describe('Press Enter after filling. Default false.'),
      })
      .refine(exactlyOneTarget, ONE_TARGET),
    execute: (args, context) =>
      session.act(context.signal, async (page) => {
        const { locator, label } = await session.locate(page, args);
        await locator.fill(args.text, { timeout: timeout(), signal: context.signal });
        if (args.submit) await locator.press('Enter', { timeout: timeout(), signal: context.signal });
        return `Filled ${label} with ${JSON.stringify(args.text)}${args.submit ? ' and pressed Enter' : ''}.`;
      }),
  });

  const press = defineTool({
    name: 'browser_press',
    description:
      'Press a key or key combination (Enter, Tab, Escape, ArrowDown, Control+A…) on an element, or on whatever has focus when no element is given.',
    args: z
      .strictObject({
        key: z
          .string()
          .min(1)
          .describe('Key name as in KeyboardEvent.key, with modifiers joined by +, e.g. "Shift+Tab".'),
        ref: refField,
        selector: selectorField,
      })
      .refine((value) => value.ref === undefined || value.selector === undefined, ONE_TARGET),
    execute: (args, context) =>
      session.act(context.signal, async (page) => {
        if (args.ref === undefined && args.selector === undefined) {
          await page.keyboard.press(args.key);
          return `Pressed ${args.key}.`;
        }
        const { locator, label } = await session.locate(page, args);
        await locator.press(args.key, { timeout: timeout(), signal: context.signal });
        return `Pressed ${args.key} on ${label}.`;
      }),
  });

  const select = defineTool({
    name: 'browser_select',
    description: 'Choose option(s) of a <select> element, by their value or visible label.',
    args: z
      .strictObject({
        ref: refField,
        selector: selectorField,
        option: z
          .union([z.string(), z.array(z.string()).min(1)])
          .describe("The option's value or label; a list selects several in a multiple select."),
      })
      .refine(exactlyOneTarget, ONE_TARGET),
    execute: (args, context) =>
      session.act(context.signal, async (page) => {
        const { locator, label } = await session.locate(page, args);
        const chosen = await locator.selectOption(args.option, {
          timeout: timeout(),
          signal: context.signal,
        });
        return `Selected ${chosen.map((value) => JSON.stringify(value)).join(', ')} in ${label}.`;
      }),
  });

  const check = defineTool({
    name: 'browser_check',
    description: 'Check (or with checked: false, uncheck) a checkbox, radio button or switch.',
    args: z
      .strictObject({
        ref: refField,
        selector: selectorField,
        checked: z.boolean().optional().describe('The state wanted. Default true.'),
      })
      .refine(exactlyOneTarget, ONE_TARGET),
    execute: (args, context) =>
      session.act(context.signal, async (page) => {
        const { locator, label } = await session.locate(page, args);
        const checked = args.checked ?? true;
        await locator.setChecked(checked, { timeout: timeout(), signal: context.signal });
        return `${checked ? 'Checked' : 'Unchecked'} ${label}.`;
      }),
  });

  const hover = defineTool({
    name: 'browser_hover',
    description: 'Move the mouse over an element (opens hover menus and tooltips).',
    args: z.strictObject({ ref: refField, selector: selectorField }).refine(exactlyOneTarget, ONE_TARGET),
    execute: (args, context) =>
      session.act(context.signal, async (page) => {
        const { locator, label } = await session.locate(page, args);
        await locator.hover({ timeout: timeout(), signal: context.signal });
        return `Hovered over ${label}.`;
      }),
  });

  const scroll = defineTool({
    name: 'browser_scroll',
    description:
      'Scroll the page, or the scrollable area containing an element, by about one screen (or `amount` pixels). Long pages are shown around the viewport, so scrolling reveals the rest.',
    args: z
      .strictObject({
        direction: directionField,
        amount: amountField,
        ref: refField,
        selector: selectorField,
      })
      .refine((value) => value.ref === undefined || value.selector === undefined, ONE_TARGET),
    execute: (args, context) =>
      session.act(context.signal, async (page) => {
        const { direction, amount, dx, dy } = scrollDelta(args, session.config.viewport);
        if (args.ref === undefined && args.selector === undefined) {
          await page.evaluate(scrollPageScript(dx, dy));
          return `Scrolled the page ${direction} by ${amount} px.`;
        }
        const { locator, label } = await session.locate(page, args);
        await locator.evaluate(SCROLL_ELEMENT, { dx, dy }, { timeout: timeout() });
        return `Scrolled ${direction} by ${amount} px in the area of ${label}.`;
      }),
  });

  const goto = defineTool({
    name: 'browser_goto',
    description:
      "Open a URL (absolute, or a path relative to the current page). Only the task's own site and its allowed origins can be opened.",
    args: z.strictObject({
      url: z.string().min(1).describe('e.g. /cart.html or http://127.0.0.1:8080/cart.html'),
    }),
    execute: (args, context) =>
      session.act(
        context.signal,
        async (page) => {
          const target = resolveGotoTarget(args.url, page.url(), session.policy);
          if (!target.ok) throw new ActionRefused(`cannot open ${args.url}: ${target.reason}`);
          await page.goto(target.url, {
            waitUntil: 'commit',
            timeout: session.config.loadTimeoutMs,
            signal: context.signal,
          });
          return `Opened ${target.url}.`;
        },
        { timeoutMs: session.config.loadTimeoutMs + 2_000, settleTimeoutMs: session.config.loadTimeoutMs },
      ),
  });

  const back = defineTool({
    name: 'browser_back',
    description: "Go back to the previous page in this tab's history.",
    args: z.strictObject({}),
    execute: (_args, context) =>
      session.act(
        context.signal,
        async (page) => {
          // Ask the history first: stepping back onto the tab's initial blank page and
          // forward again races the renderer swap that navigation causes.
          const cdp = await page.context().newCDPSession(page);
          let previous: string | undefined;
          try {
            const history = (await cdp.send('Page.getNavigationHistory')) as {
              currentIndex: number;
              entries: { url: string }[];
            };
            previous = history.entries[history.currentIndex - 1]?.url;
          } finally {
            await cdp.detach().catch(() => undefined); // the page may be gone; nothing to release then
          }
          if (previous === undefined || previous === 'about:blank') {
            throw new ActionRefused('there is no previous page in this tab');
          }
          const before = page.url();
          const response = await page.goBack({
            waitUntil: 'commit',
            timeout: session.config.loadTimeoutMs,
            signal: context.signal,
          });
          // null: no history entry to go back to, or one in the same document (a #hash).
          if (response === null && page.url() === before) {
            throw new ActionRefused('there is no previous page in this tab');
          }
          return 'Went back.';
        },
        { timeoutMs: session.config.loadTimeoutMs + 2_000, settleTimeoutMs: session.config.loadTimeoutMs },
      ),
  });

  const waitFor = defineTool({
    name: 'browser_wait_for',
    description:
      'Wait until a text appears on the page (or an element by ref/selector appears), or with gone: true until it disappears. Use when the page is still loading or updating.',
    args: z
      .strictObject({
        text: z.string().min(1).optional().describe('Text to wait for (case-insensitive, substring).'),
        ref: refField,
        selector: selectorField,
        gone: z.boolean().optional().describe('Wait for it to disappear instead. Default false.'),
        timeout_sec: z.number().positive().max(30).optional().describe('Longest wait in seconds. Default 5.'),
      })
      .refine(
        (value) => [value.text, value.ref, value.selector].filter((item) => item !== undefined).length === 1,
        { error: 'give exactly one of text, ref or selector', path: ['text'] },
      ),
    execute: (args, context) => {
      // At least 1 ms: Playwright reads a timeout of 0 as no timeout at all.
      const timeoutMs = Math.max(1, Math.round((args.timeout_sec ?? 5) * 1000));
      return session.act(
        context.signal,
        async (page) => {
          const state = args.gone ? 'hidden' : 'visible';
          let label: string;
          if (args.text !== undefined) {
            label = JSON.stringify(args.text);
            await page
              .getByText(args.text)
              .first()
              .waitFor({ state, timeout: timeoutMs, signal: context.signal });
          } else if (args.ref !== undefined && args.gone) {
            label = args.ref;
            await page.getByRef(args.ref).waitFor({ state, timeout: timeoutMs, signal: context.signal });
          } else {
            const located = args.ref !== undefined ? await session.locate(page, args) : undefined;
            const locator = located?.locator ?? page.locator(args.selector ?? '').first();
            label = located?.label ?? args.selector ?? '';
            await locator.waitFor({ state, timeout: timeoutMs, signal: context.signal });
          }
          return `${label} ${args.gone ? 'is gone' : 'is there'}.`;
        },
        { timeoutMs: Math.max(timeoutMs, session.config.actionTimeoutMs) + 2_000 },
      );
    },
  });

  const snapshot = defineTool({
    name: 'browser_snapshot',
    description: 'Look at the page again without acting (URL, title, snapshot with refs).',
    args: z.strictObject({}),
    execute: (_args, context) => session.observe(context.signal),
  });

  return [click, fill, press, select, check, hover, scroll, goto, back, waitFor, snapshot];
}
