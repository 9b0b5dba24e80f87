/**
 * The `browser:` section of a task file: where the pages come from, where the agent
 * starts, which origins the page may reach, how the episode is scored, and how the
 * browser behaves. Snake_case and strict, like the rest of `task.yaml`; paths are
 * relative to the task folder. `resolveBrowserConfig` turns a parsed section into the
 * absolute paths and millisecond units the provider uses.
 */
import path from 'node:path';
import { z } from 'zod';
import { ERROR_CODES, PaddockError, formatZodIssues, type Task } from '../../harness/index.ts';
import { declareTaskPaths } from '../../harness/task.ts';
import { GROUNDING_REWARD_KINDS } from '../../rewards/grounding.ts';

/** A path inside the task folder, relative to it. */
const TaskPathSchema = z
  .string()
  .min(1)
  .regex(/^[^/]/, { error: 'expected a path relative to the task folder (not absolute)' })
  .refine((value) => !value.split(/[\\/]/).includes('..'), {
    error: 'expected a path inside the task folder (no "..")',
  });

/** How long a scorer may take when the task does not say, in seconds. */
export const DEFAULT_SCORE_TIMEOUT_SEC = 10;

/** A positive number of seconds. */
function secondsSchema(max: number) {
  return z.number().positive().max(max);
}

/** `http(s)://host[:port]` with nothing after it. */
const OriginSchema = z.string().regex(/^https?:\/\/[^/?#\s]+\/?$/i, {
  error: 'expected an origin such as http://127.0.0.1:8080 (no path)',
});

/** An http(s) URL. */
const HttpUrlSchema = z
  .string()
  .regex(/^https?:\/\/[^/?#\s]+/, { error: 'expected an http:// or https:// URL' })
  .refine((value) => URL.canParse(value), { error: 'expected a valid URL' });

/** Where a server is polled until it is ready. */
const ReadyPathSchema = z
  .string()
  .regex(/^\//, { error: 'expected a path starting with /' })
  .default('/')
  .meta({ description: 'Path polled until it answers (any status below 500). Default "/".' });

/** `app:` — a small web server the task ships, started on a fresh loopback port per episode. */
export const BrowserAppSchema = z
  .strictObject({
    command: z.string().min(1).meta({
      description:
        'Shell command started in the task folder with PORT=<fresh port> (and HOST=127.0.0.1); it must serve on 127.0.0.1:$PORT.',
    }),
    ready_path: ReadyPathSchema,
    ready_timeout_sec: secondsSchema(600)
      .default(20)
      .meta({ description: 'How long the app may take to answer, in seconds. Default 20.' }),
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected a variable name' }),
        z.union([z.string(), z.number(), z.boolean()]),
      )
      .default({})
      .meta({ description: 'Extra environment variables of the command.' }),
  })
  .meta({ description: 'A web app the task ships, started per episode and killed after.' });

/**
 * `sandbox:` — a server inside the task's own Docker sandbox (its `environment:`), reached
 * from the host through the engine (the container keeps `network: none`).
 */
export const BrowserSandboxSchema = z
  .strictObject({
    port: z.number().int().min(1).max(65_535).meta({
      description:
        'TCP port the server listens on inside the sandbox (on 127.0.0.1 or 0.0.0.0). The page sees it on a fresh loopback port of the host.',
    }),
    command: z.string().min(1).optional().meta({
      description:
        'Shell command started in the sandbox at the start of every episode and killed after it (e.g. python3 -m http.server 8000 --directory /srv/site). Leave it out when something in the sandbox already serves the port.',
    }),
    ready_path: ReadyPathSchema,
    ready_timeout_sec: secondsSchema(600)
      .default(20)
      .meta({ description: 'How long the server may take to answer, in seconds. Default 20.' }),
  })
  .meta({
    description:
      "A web server inside the task's Docker sandbox (its environment), reached through the engine; the sandbox needs bash.",
  });

/** Which tools act on the page: by element (`refs`), by screen point (`coordinates`), both, or none. */
export const ACTION_SPACES = ['refs', 'coordinates', 'both', 'none'] as const;
export type ActionSpace = (typeof ACTION_SPACES)[number];

/**
 * An element the agent should point at, for GUI-grounding rewards: a selector (CSS or
 * Playwright's), an accessibility role and name, or a fixed box in CSS pixels of the
 * viewport. Elements' boxes are measured on the page when the agent points.
 */
export const GroundingTargetSchema = z.union(
  [
    z.strictObject({ selector: z.string().min(1) }),
    z.strictObject({ role: z.string().min(1), name: z.string().min(1).optional() }),
    z.strictObject({
      box: z
        .tuple([z.number(), z.number(), z.number(), z.number()])
        .refine(([x1, y1, x2, y2]) => x2 > x1 && y2 > y1, {
          error: 'expected [x1, y1, x2, y2] with x2 > x1 and y2 > y1',
        }),
    }),
  ],
  { error: 'expected { selector }, { role, name } or { box: [x1, y1, x2, y2] }' },
);
export type GroundingTarget = z.output<typeof GroundingTargetSchema>;

/** GUI-grounding kinds a `grounding.rewards` mapping may name (see rewards/grounding.ts). */
export const GROUNDING_KINDS = GROUNDING_REWARD_KINDS;

/** `grounding:` — where the agent should point, and how its answer is scored. */
export const BrowserGroundingSchema = z
  .strictObject({
    target: GroundingTargetSchema.optional(),
    targets: z.array(GroundingTargetSchema).min(1).optional(),
    rewards: z
      .partialRecord(
        z.enum(GROUNDING_KINDS),
        z.number().refine(Number.isFinite, { error: 'expected a finite weight' }),
      )
      .default({})
      .meta({
        description:
          'Rewards of the submitted answer (a point or a box), by kind → weight: hit, gaussian_point, gaussian_coverage, hyperclick, box_size, iou. Components are named grounding.<kind>.',
      }),
  })
  .superRefine((value, context) => {
    if ((value.target === undefined) === (value.targets === undefined)) {
      context.addIssue({
        code: 'custom',
        path: ['target'],
        message: 'expected exactly one of target or targets',
      });
    }
  })
  .meta({
    description: 'GUI grounding: the elements the agent should point at, and the rewards of its answer.',
  });

/** The keys that name where the pages come from; a section has exactly one. */
const SOURCE_KEYS = ['site', 'app', 'url', 'sandbox'] as const;

/**
 * The zod schema of a task's `browser:` section (register it with the task loader as
 * `extensions: { browser: browserTaskExtension }`). Exactly one of `site`, `app`, `url`,
 * `sandbox`.
 */
export const browserTaskExtension = z
  .strictObject({
    site: TaskPathSchema.optional().meta({
      description: 'A folder of static files served on 127.0.0.1 on a fresh port per episode (e.g. site/).',
    }),
    app: BrowserAppSchema.optional(),
    url: HttpUrlSchema.optional().meta({
      description:
        'An already-running site reachable from the host. Its origin is allowed; start defaults to it.',
    }),
    sandbox: BrowserSandboxSchema.optional(),
    start: z
      .string()
      .regex(/^(\/|https?:\/\/)/, { error: 'expected a path starting with / or an http(s) URL' })
      .default('/')
      .meta({
        description:
          'First page: a path on the site/app/url/sandbox origin, or a URL on an allowed origin. Default "/".',
      }),
    score: z
      .union([TaskPathSchema, z.strictObject({ expression: z.string().min(1) })], {
        error: 'expected a scorer file (relative to the task folder) or { expression: "…" }',
      })
      .optional()
      .meta({
        description:
          'A JavaScript expression or function (a file, or inline) evaluated in an isolated world of the page at the end: true/1 solved, false/0 not, a number for partial credit. Never served to the page.',
      }),
    allowed_origins: z
      .array(OriginSchema)
      .default([])
      .meta({ description: 'Origins the page may reach besides its own. Everything else is blocked.' }),
    actions: z.enum(ACTION_SPACES).default('refs').meta({
      description:
        'The action space: refs (elements by ref or selector), coordinates (points in CSS pixels of the screenshot), both, or none (no browser tools: the agent answers with submit). Default refs.',
    }),
    coordinates: z.enum(['css', 'normalized']).default('css').meta({
      description:
        'What x and y mean: css (CSS pixels of the screenshot, origin top-left) or normalized (a 0–1000 grid over the screenshot, as some models answer). Default css.',
    }),
    screenshot: z.boolean().optional().meta({
      description:
        'Attach a PNG screenshot to every observation, the first one included. Default: true when actions is coordinates or none, else false.',
    }),
    snapshot: z.boolean().optional().meta({
      description:
        'Show the accessibility snapshot (with refs) in observations. Default: false when actions is coordinates or none, else true.',
    }),
    marks: z.boolean().default(false).meta({
      description:
        "Set-of-marks: draw each element of the snapshot's box, labelled with its ref, on the screenshot. Default false.",
    }),
    uploads: z.array(TaskPathSchema).default([]).meta({
      description: 'Files (relative to the task folder) the agent may upload with browser_upload.',
    }),
    grounding: BrowserGroundingSchema.optional(),
    viewport: z
      .strictObject({
        width: z.number().int().min(200).max(4000),
        height: z.number().int().min(200).max(4000),
      })
      .default({ width: 1280, height: 720 })
      .meta({ description: 'Viewport size in CSS pixels. Default 1280×720.' }),
    max_snapshot_chars: z.number().int().min(500).max(500_000).default(12_000).meta({
      description:
        'Longest page snapshot shown; longer pages are trimmed around the viewport. Default 12000.',
    }),
    popups: z.enum(['block', 'follow', 'tabs']).default('block').meta({
      description:
        'Windows the page opens: block (closed at once, reported), follow (the newest becomes the page the agent sees) or tabs (the same, and the agent lists, switches and closes tabs with browser_tabs). Default block.',
    }),
    dialogs: z.enum(['accept', 'dismiss', 'agent']).default('accept').meta({
      description:
        'What happens to alert/confirm/prompt dialogs (always reported): accept, dismiss, or agent (the dialog stays open until the agent answers it with browser_dialog). Default accept.',
    }),
    action_timeout_sec: secondsSchema(60).default(3).meta({
      description: 'How long an action waits for its element to be actionable, in seconds. Default 3.',
    }),
    load_timeout_sec: secondsSchema(300)
      .default(10)
      .meta({ description: 'How long a navigation may take to commit and load, in seconds. Default 10.' }),
    settle_timeout_sec: secondsSchema(60).default(2).meta({
      description:
        'Longest wait after an action for the page to settle (load, network idle, DOM quiet), in seconds. Default 2.',
    }),
    score_timeout_sec: secondsSchema(300).optional().meta({
      description:
        'Longest a scorer may take, in seconds; past it the page scores 0 (note "scorer timed out") and a page whose main thread is stuck is closed. Default 10.',
    }),
  })
  .superRefine((value, context) => {
    const sources = SOURCE_KEYS.filter((key) => value[key] !== undefined);
    if (sources.length !== 1) {
      context.addIssue({
        code: 'custom',
        path: sources.length > 1 ? [sources[1]!] : [],
        message:
          sources.length === 0
            ? 'expected exactly one of site, app, url or sandbox'
            : `give only one of site, app, url or sandbox (found ${sources.join(', ')})`,
      });
    }
  })
  .meta({ description: 'A web task: pages shown in a real Chromium, browser tools, a page-state scorer.' });

// The loader checks that the site folder and the scorer file lie inside the task folder
// (after symbolic links, with no link in the site leading out).
declareTaskPaths(browserTaskExtension, (section) => {
  const value = section as BrowserTaskExtension;
  return [
    ...(value.site !== undefined ? [{ field: 'site', path: value.site, kind: 'dir' as const }] : []),
    ...(typeof value.score === 'string'
      ? [{ field: 'score', path: value.score, kind: 'file' as const }]
      : []),
    ...value.uploads.map((upload, index) => ({
      field: `uploads.${index}`,
      path: upload,
      kind: 'file' as const,
    })),
  ];
});

/** A task's `browser:` section as written (defaults optional). */
export type BrowserTaskExtensionInput = z.input<typeof browserTaskExtension>;
/** A task's `browser:` section as parsed (defaults applied), as the loader stores it. */
export type BrowserTaskExtension = z.output<typeof browserTaskExtension>;

/** Where an episode's pages come from. */
export type PageSource =
  /** Static files served from `root` (absolute). */
  | { kind: 'site'; root: string }
  /** A command started in `cwd` with `PORT`, polled at `readyPath` until it answers. */
  | {
      kind: 'app';
      command: string;
      cwd: string;
      readyPath: string;
      readyTimeoutMs: number;
      env: Record<string, string>;
    }
  /** An already-running site. */
  | { kind: 'url'; url: string }
  /**
   * A server on `port` inside the episode's Docker sandbox, reached through a relay on the
   * host; `command` (when given) is started in the sandbox per episode.
   */
  | { kind: 'sandbox'; port: number; command?: string; readyPath: string; readyTimeoutMs: number };

/** The scorer: a file on the host (read at episode start) or inline source. */
export type ScorerSource = { kind: 'file'; path: string } | { kind: 'expression'; source: string };

/** A `browser:` section resolved against its task folder, in the units the provider uses. */
export interface BrowserTaskConfig {
  source: PageSource;
  /** Path (on the source's origin) or absolute URL of the first page. */
  start: string;
  scorer?: ScorerSource;
  /** Extra origins the page may reach (normalised `scheme://host:port`). */
  allowedOrigins: string[];
  actions: ActionSpace;
  /** What x and y of coordinate tools mean: CSS pixels, or a 0–1000 grid over the screenshot. */
  coordinates: 'css' | 'normalized';
  screenshot: boolean;
  /** Whether observations show the accessibility snapshot. */
  snapshot: boolean;
  /** Set-of-marks boxes on the screenshot. */
  marks: boolean;
  /** Files the agent may upload: absolute path by the name the task wrote. */
  uploads: { name: string; path: string }[];
  grounding?: {
    targets: GroundingTarget[];
    rewards: Partial<Record<(typeof GROUNDING_KINDS)[number], number>>;
  };
  viewport: { width: number; height: number };
  maxSnapshotChars: number;
  popups: 'block' | 'follow' | 'tabs';
  dialogs: 'accept' | 'dismiss' | 'agent';
  actionTimeoutMs: number;
  loadTimeoutMs: number;
  settleTimeoutMs: number;
  /** Longest a scorer may take, in ms. */
  scoreTimeoutMs: number;
}

/**
 * Validates a task's `browser:` section (raw or already parsed) and resolves its paths
 * against `taskDir`.
 *
 * @throws PaddockError CONFIG_INVALID listing each bad field.
 */
export function resolveBrowserConfig(section: unknown, taskDir: string): BrowserTaskConfig {
  const parsed = browserTaskExtension.safeParse(section);
  if (!parsed.success) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `invalid browser section:\n${formatZodIssues(parsed.error.issues)}`,
      {
        details: {
          issues: parsed.error.issues.map((issue) => ({
            path: issue.path.map(String).join('.'),
            message: issue.message,
          })),
        },
      },
    );
  }
  const value = parsed.data;
  // At least 1 ms: Playwright reads a timeout of 0 as no timeout at all.
  const seconds = (sec: number) => Math.max(1, Math.round(sec * 1000));
  let source: PageSource;
  if (value.site !== undefined) source = { kind: 'site', root: path.resolve(taskDir, value.site) };
  else if (value.app !== undefined) {
    source = {
      kind: 'app',
      command: value.app.command,
      cwd: taskDir,
      readyPath: value.app.ready_path,
      readyTimeoutMs: seconds(value.app.ready_timeout_sec),
      env: Object.fromEntries(Object.entries(value.app.env).map(([key, item]) => [key, String(item)])),
    };
  } else if (value.sandbox !== undefined) {
    source = {
      kind: 'sandbox',
      port: value.sandbox.port,
      ...(value.sandbox.command !== undefined ? { command: value.sandbox.command } : {}),
      readyPath: value.sandbox.ready_path,
      readyTimeoutMs: seconds(value.sandbox.ready_timeout_sec),
    };
  } else source = { kind: 'url', url: value.url! };
  // An agent that acts by points, or only answers, sees the page as a picture.
  const pointing = value.actions === 'coordinates' || value.actions === 'none';
  const scorer: ScorerSource | undefined =
    value.score === undefined
      ? undefined
      : typeof value.score === 'string'
        ? { kind: 'file', path: path.resolve(taskDir, value.score) }
        : { kind: 'expression', source: value.score.expression };
  return {
    source,
    start: value.start,
    ...(scorer ? { scorer } : {}),
    allowedOrigins: value.allowed_origins.map((origin) => new URL(origin).origin),
    actions: value.actions,
    coordinates: value.coordinates,
    screenshot: value.screenshot ?? pointing,
    snapshot: value.snapshot ?? !pointing,
    marks: value.marks,
    uploads: value.uploads.map((upload) => ({ name: upload, path: path.resolve(taskDir, upload) })),
    ...(value.grounding
      ? {
          grounding: {
            targets: value.grounding.targets ?? [value.grounding.target!],
            rewards: value.grounding.rewards,
          },
        }
      : {}),
    viewport: value.viewport,
    maxSnapshotChars: value.max_snapshot_chars,
    popups: value.popups,
    dialogs: value.dialogs,
    actionTimeoutMs: seconds(value.action_timeout_sec),
    loadTimeoutMs: seconds(value.load_timeout_sec),
    settleTimeoutMs: seconds(value.settle_timeout_sec),
    scoreTimeoutMs: seconds(value.score_timeout_sec ?? DEFAULT_SCORE_TIMEOUT_SEC),
  };
}

/**
 * Checks that `task` can have a page turn reward (a `page:` entry in its `rewards.turn`):
 * it has a `browser:` section (under `key`) with a scorer.
 *
 * @throws PaddockError CONFIG_INVALID when the task has no browser section or no `browser.score`.
 */
export function checkPageRewardTask(task: Task, key = 'browser'): void {
  const section = task.extensions[key];
  if (section === undefined) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `task ${task.id} has no browser section: a page reward scores the page of a web task`,
    );
  }
  if (!resolveBrowserConfig(section, task.dir).scorer) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `task ${task.id} has no browser.score: a page reward runs the page scorer after each turn`,
    );
  }
}

/**
 * Checks that `task` can have a grounding turn reward (a `grounding:` entry in its
 * `rewards.turn`): it has a `browser:` section (under `key`) with `grounding` targets and
 * coordinate actions.
 *
 * @throws PaddockError CONFIG_INVALID naming what is missing.
 */
export function checkGroundingRewardTask(task: Task, key = 'browser'): void {
  const section = task.extensions[key];
  if (section === undefined) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `task ${task.id} has no browser section: a grounding reward scores where the agent points on a page`,
    );
  }
  const config = resolveBrowserConfig(section, task.dir);
  if (!config.grounding) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `task ${task.id} has no browser.grounding: a grounding reward needs the targets the agent should point at`,
    );
  }
  if (config.actions === 'refs' || config.actions === 'none') {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `task ${task.id}: a grounding reward scores coordinate actions, but browser.actions is ${config.actions} (expected coordinates or both)`,
    );
  }
}
