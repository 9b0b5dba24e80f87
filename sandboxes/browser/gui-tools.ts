/**
 * The tools of a GUI agent, which acts on what it sees: points of the screenshot (click,
 * double- and right-click, hover, drag, scroll at a point), typing into whatever has
 * focus, and the parts of a browser a person handles besides the page: tabs, dialogs,
 * file uploads.
 *
 * x and y are CSS pixels of the screenshot the agent was shown, origin at its top-left
 * corner (with `coordinates: normalized`, a 0–1000 grid over it); a point outside the
 * screenshot is refused, as an observation.
 */
import { z } from 'zod';
import { defineTool, type Tool } from '../../harness/index.ts';
import { ActionRefused, type BrowserSession, type Target } from './session.ts';
import { amountField, directionField, refField, scrollDelta, selectorField } from './tool-args.ts';

const coordinate = (axis: 'x' | 'y', units: string) =>
  z
    .number()
    .refine(Number.isFinite, { error: 'expected a finite number' })
    .describe(
      `${axis === 'x' ? 'Horizontal' : 'Vertical'} position on the screenshot (${units}, from the ${axis === 'x' ? 'left' : 'top'} edge).`,
    );

/** The tools that point at the screen: offered when the task's actions are `coordinates` or `both`. */
export function coordinateTools(session: BrowserSession): Tool[] {
  const units = session.config.coordinates === 'css' ? 'CSS pixels' : '0–1000 grid';
  const x = coordinate('x', units);
  const y = coordinate('y', units);

  const clickAt = defineTool({
    name: 'browser_click_at',
    description:
      'Click at a point of the screenshot (x, y). Use button "right" for a context menu, double: true for a double-click. Returns the page after the click.',
    args: z.strictObject({
      x,
      y,
      button: z.enum(['left', 'right', 'middle']).optional().describe('Mouse button. Default left.'),
      double: z.boolean().optional().describe('Double-click instead. Default false.'),
    }),
    execute: (args, context) =>
      session.act(context.signal, async (page) => {
        const point = await session.pointAt(page, args, 'browser_click_at', context.turnIndex);
        const button = args.button ?? 'left';
        if (args.double) await page.mouse.dblclick(point.x, point.y, { button });
        else await page.mouse.click(point.x, point.y, { button });
        const what = args.double
          ? 'Double-clicked'
          : button === 'left'
            ? 'Clicked'
            : `${button[0]!.toUpperCase()}${button.slice(1)}-clicked`;
        return `${what} at (${args.x}, ${args.y}).`;
      }),
  });

  const hoverAt = defineTool({
    name: 'browser_hover_at',
    description: 'Move the mouse to a point of the screenshot (opens hover menus and tooltips).',
    args: z.strictObject({ x, y }),
    execute: (args, context) =>
      session.act(context.signal, async (page) => {
        const point = await session.pointAt(page, args, 'browser_hover_at', context.turnIndex);
        await page.mouse.move(point.x, point.y);
        return `Moved the mouse to (${args.x}, ${args.y}).`;
      }),
  });

  const drag = defineTool({
    name: 'browser_drag',
    description:
      'Press the left mouse button at one point of the screenshot, move to another and release (drag and drop, sliders, selecting text).',
    args: z.strictObject({
      from_x: coordinate('x', units),
      from_y: coordinate('y', units),
      to_x: coordinate('x', units),
      to_y: coordinate('y', units),
    }),
    execute: (args, context) =>
      session.act(context.signal, async (page) => {
        const from = await session.pointAt(
          page,
          { x: args.from_x, y: args.from_y },
          'browser_drag',
          context.turnIndex,
        );
        const to = session.toViewport({ x: args.to_x, y: args.to_y });
        await page.mouse.move(from.x, from.y);
        await page.mouse.down();
        // In steps, as a hand moves: pages that follow mousemove see a path, not a jump.
        await page.mouse.move(to.x, to.y, { steps: 12 });
        await page.mouse.up();
        return `Dragged from (${args.from_x}, ${args.from_y}) to (${args.to_x}, ${args.to_y}).`;
      }),
  });

  const scrollAt = defineTool({
    name: 'browser_scroll_at',
    description:
      'Turn the mouse wheel over a point of the screenshot: scrolls whatever is scrollable there (the page, a list, a map) by about one screen, or `amount` pixels.',
    args: z.strictObject({
      x,
      y,
      direction: directionField,
      amount: amountField,
    }),
    execute: (args, context) =>
      session.act(context.signal, async (page) => {
        const point = session.toViewport(args);
        const { direction, amount, dx, dy } = scrollDelta(args, session.config.viewport);
        await page.mouse.move(point.x, point.y);
        await page.mouse.wheel(dx, dy);
        // The wheel scrolls asynchronously: let the page take one frame for it.
        await page.evaluate('new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)))');
        return `Scrolled ${direction} by ${amount} px at (${args.x}, ${args.y}).`;
      }),
  });

  const type = defineTool({
    name: 'browser_type',
    description:
      'Type text with the keyboard into whatever has focus (click a field first); with submit: true, press Enter afterwards.',
    args: z.strictObject({
      text: z.string().max(10_000).describe('The text to type.'),
      submit: z.boolean().optional().describe('Press Enter after typing. Default false.'),
    }),
    execute: (args, context) =>
      session.act(context.signal, async (page) => {
        await page.keyboard.type(args.text);
        if (args.submit) await page.keyboard.press('Enter');
        return `Typed ${JSON.stringify(args.text)}${args.submit ? ' and pressed Enter' : ''}.`;
      }),
  });

  return [clickAt, hoverAt, drag, scrollAt, type];
}

/** `browser_tabs`: offered when the task's pop-ups open as tabs. */
export function tabsTool(session: BrowserSession): Tool {
  return defineTool({
    name: 'browser_tabs',
    description:
      'The tabs of the browser: list them, switch to one (by its index in the list), or close one. New windows the page opens become tabs.',
    args: z.strictObject({
      action: z.enum(['list', 'switch', 'close']).describe('list, switch or close.'),
      index: z
        .number()
        .int()
        .min(0)
        .optional()
        .describe('The tab, by its index in the list (switch and close).'),
    }),
    execute: (args, context) =>
      session.act(context.signal, async () => {
        if (args.action === 'list') return session.describeTabs();
        if (args.index === undefined) throw new ActionRefused(`give the index of the tab to ${args.action}`);
        return args.action === 'switch' ? session.switchTab(args.index) : session.closeTab(args.index);
      }),
  });
}

/** `browser_dialog`: offered when the task lets the agent answer dialogs itself. */
export function dialogTool(session: BrowserSession): Tool {
  return defineTool({
    name: 'browser_dialog',
    description:
      'Answer the dialog the page shows (alert, confirm, prompt): accept (OK) or not (Cancel); for a prompt, the text to answer with.',
    args: z.strictObject({
      accept: z.boolean().describe('true: OK; false: Cancel.'),
      text: z.string().max(10_000).optional().describe("A prompt dialog's answer (when accepting)."),
    }),
    execute: (args, context) => session.answerDialog(context.signal, args.accept, args.text),
  });
}

/** `browser_upload`: offered when the task gives files the agent may upload. */
export function uploadTool(session: BrowserSession): Tool {
  const names = session.config.uploads.map((upload) => upload.name);
  const pointing = session.config.actions !== 'refs';
  const byElement = session.config.actions !== 'coordinates';
  return defineTool({
    name: 'browser_upload',
    description: `Choose files for a file input: ${pointing ? 'click the point (x, y) that opens the file chooser' : 'the file input by ref or selector'}${pointing && byElement ? ', or name the input by ref or selector' : ''}. Files the task provides: ${names.join(', ')}.`,
    args: z
      .strictObject({
        files: z
          .array(z.string().min(1))
          .min(1)
          .describe(`Files to choose, among: ${names.join(', ')}.`),
        ...(pointing ? { x: z.number().optional(), y: z.number().optional() } : {}),
        ...(byElement ? { ref: refField, selector: selectorField } : {}),
      })
      .refine(
        (value: { x?: unknown; y?: unknown; ref?: unknown; selector?: unknown }) =>
          [
            value.x !== undefined && value.y !== undefined,
            value.ref !== undefined,
            value.selector !== undefined,
          ].filter(Boolean).length === 1,
        {
          error: `give exactly one of ${[pointing ? 'x and y' : '', byElement ? 'ref, selector' : ''].filter(Boolean).join(', ')}`,
        },
      ),
    execute: (args: { files: string[]; x?: number; y?: number; ref?: string; selector?: string }, context) =>
      session.act(context.signal, async (page) => {
        const files = args.files.map((name) => session.uploadPath(name));
        if (args.x !== undefined && args.y !== undefined) {
          const point = await session.pointAt(
            page,
            { x: args.x, y: args.y },
            'browser_upload',
            context.turnIndex,
          );
          const opened = await session.nextFileChooser(
            () => page.mouse.click(point.x, point.y),
            session.config.actionTimeoutMs,
          );
          if (!opened) throw new ActionRefused(`clicking at (${args.x}, ${args.y}) opened no file chooser`);
          await opened.setFiles(files, { timeout: session.config.actionTimeoutMs });
          return `Chose ${args.files.join(', ')} in the file chooser opened at (${args.x}, ${args.y}).`;
        }
        const target: Target = { ref: args.ref, selector: args.selector };
        const { locator, label } = await session.locate(page, target);
        await locator.setInputFiles(files, {
          timeout: session.config.actionTimeoutMs,
          signal: context.signal,
        });
        return `Chose ${args.files.join(', ')} in ${label}.`;
      }),
  });
}
