/**
 * The `rewards:` section of task.yaml, registered with the task loader under the key
 * `rewards` (`loadTasks(paths, { extensions: { rewards: rewardsTaskExtension } })`).
 * Strict: an unknown key is an error with its path. Paths are relative to the task folder.
 *
 * ```yaml
 * rewards:
 *   turn:
 *     - progress: { command: "python3 -m pytest -q tests/visible | tail -1", parse: passed_fraction }
 *     - rule: tool_error
 *       weight: 0.1
 *     - model: { onnx: rewards/progress, input: transcript, mode: progress }
 *     - page: { mode: delta }        # web tasks: the browser's page scorer after each turn
 *   trajectory:
 *     - verifier: { weight: 1.0 }
 *     - judge: { agent: "openai:gpt-4.1-mini", rubric: rubric.md, weight: 0.2 }
 *     - answer: { expected: "42", match: numeric, tolerance: 1e-6 }
 *   constraints:
 *     - cost: tokens
 *       limit: 20000
 * ```
 *
 * Each entry is one component, named after its kind (`progress`, `tool_error`, `model`,
 * `page`, `judge`, `answer`, `verifier`) unless it sets `name`; `weight` (default 1) may sit
 * beside the kind key or inside its mapping.
 */
import { z } from 'zod';
import { MAX_TIMER_MS } from '../harness/deadline.ts';
import { declareTaskPaths, type TaskPathRef } from '../harness/task.ts';

/** Rules over one turn; every rule's value is a penalty (≤ 0). */
export const TURN_RULES = [
  'tool_error',
  'invalid_call',
  'format',
  'repeat',
  'tokens',
  'cost',
  'truncated',
  'refused',
] as const;
export type TurnRuleName = (typeof TURN_RULES)[number];

/** What a constraint measures on an episode. */
export const CONSTRAINT_KINDS = [
  'tokens',
  'prompt_tokens',
  'completion_tokens',
  'cost_usd',
  'turns',
  'wall_time_sec',
  'tool_calls',
] as const;
export type ConstraintKind = (typeof CONSTRAINT_KINDS)[number];

/** How an answer is compared with the expected one. */
export const ANSWER_MATCHES = ['exact', 'normalized', 'numeric', 'regex'] as const;
export type AnswerMatch = (typeof ANSWER_MATCHES)[number];

const NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;

const nameSchema = z
  .string({ error: 'expected a component name' })
  .regex(NAME, { error: 'expected a name of letters, digits, "_", "." and "-", starting with a letter' })
  .meta({ description: 'Component name in the reward breakdown. Default: the kind.' });

const weightSchema = z
  .number({ error: 'expected a number' })
  .refine(Number.isFinite, { error: 'expected a finite number' })
  .meta({ description: 'Weight of the component in the total. Default 1.' });

const relativePath = (what: string) =>
  z
    .string({ error: `expected ${what}, relative to the task folder` })
    .min(1, { error: `expected ${what}, relative to the task folder` })
    .regex(/^[^/]/, { error: `expected ${what} relative to the task folder (not absolute)` });

const positiveSeconds = z
  .number({ error: 'expected a positive number of seconds' })
  .positive({ error: 'expected a positive number of seconds' })
  .max(MAX_TIMER_MS / 1000, {
    error: `expected at most ${MAX_TIMER_MS / 1000} seconds (the longest delay Node's timers can wait)`,
  });

/** `progress:` — a command run in the sandbox after each turn, parsed into a value in [0, 1]. */
export const ProgressEntrySchema = z.strictObject({
  command: z.string({ error: 'expected a shell command' }).min(1, { error: 'expected a shell command' }),
  parse: z
    .string({ error: 'expected passed_fraction, number or json:<key>' })
    .regex(/^(passed_fraction|number|json:[^\s]+)$/, {
      error: 'expected passed_fraction, number or json:<key>',
    })
    .meta({
      description:
        'How stdout becomes progress: passed_fraction (pytest summary), number (the last number), json:<key> (a dotted key of a JSON object).',
    }),
  timeout_sec: positiveSeconds.optional().meta({ description: 'Limit of the command. Default 60.' }),
  cwd: z.string().regex(/^\//, { error: 'expected an absolute path in the sandbox' }).optional(),
  user: z.string().min(1).optional().meta({ description: 'User the command runs as. Default root.' }),
  initial: z.number().min(0).max(1).optional().meta({
    description: 'Progress assumed before turn 0 when it could not be measured at the start. Default 0.',
  }),
  name: nameSchema.optional(),
  weight: weightSchema.optional(),
});

/** `model:` — an ONNX reward or progress model run on the host. */
const modelFields = {
  onnx: relativePath('a model folder (model.onnx + spec.json) or an .onnx file').meta({
    description:
      'A folder holding model.onnx and spec.json, or an .onnx file with <name>.spec.json or spec.json beside it.',
  }),
  name: nameSchema.optional(),
  weight: weightSchema.optional(),
};

export const TurnModelEntrySchema = z.strictObject({
  ...modelFields,
  input: z.enum(['turn_text', 'transcript']).optional().meta({
    description:
      'turn_text: the turn alone; transcript: the instruction and every turn so far. Default turn_text.',
  }),
  mode: z.enum(['reward', 'progress']).optional().meta({
    description:
      'reward: the score is the reward; progress: the score is a potential, rewarded by its change. Default reward.',
  }),
});

export const TrajectoryModelEntrySchema = z.strictObject({
  ...modelFields,
  input: z.enum(['transcript', 'answer', 'final_text']).optional().meta({
    description:
      "What the model reads: the transcript, the submitted answer, or the last turn's text. Default transcript.",
  }),
});

/**
 * `page:` — the task's page scorer (`browser.score`) run on the agent's page after each
 * turn, by the browser plug-in.
 */
export const PageEntrySchema = z.strictObject({
  mode: z.enum(['delta', 'value']).optional().meta({
    description:
      "delta: the change of the page's score since the previous turn (a potential difference: an episode's turn rewards add up to its final page score); value: the score itself. Default delta.",
  }),
  name: nameSchema.optional(),
  weight: weightSchema.optional(),
});

/**
 * `grounding:` — a GUI-grounding reward of each coordinate action of the turn (where it
 * pointed against the box of the task's `browser.grounding` target), by the browser
 * plug-in. Kinds and formulas: rewards/grounding.ts.
 */
export const GroundingEntrySchema = z.strictObject({
  kind: z.enum(['hit', 'gaussian_point']).optional().meta({
    description:
      "hit: 1 inside the target element, else 0; gaussian_point: GUI-G²'s Gaussian point reward (1 at the centre, falling with distance relative to the element's size). Default gaussian_point.",
  }),
  name: nameSchema.optional(),
  weight: weightSchema.optional(),
});

/** `judge:` — an LLM judge with a rubric. */
const judgeFields = {
  agent: z.string({ error: 'expected an agent spec, e.g. openai:gpt-4.1-mini' }).min(1),
  rubric: relativePath('a rubric file'),
  retries: z
    .number()
    .int()
    .min(0)
    .max(10)
    .optional()
    .meta({ description: 'Extra attempts after a reply without a parseable score. Default 2.' }),
  scale: z
    .tuple([z.number(), z.number()])
    .refine(([low, high]) => high > low, { error: 'expected [low, high] with high > low' })
    .optional()
    .meta({ description: 'The range the rubric scores in, mapped onto [0, 1]. Default [0, 1].' }),
  name: nameSchema.optional(),
  weight: weightSchema.optional(),
};

export const TurnJudgeEntrySchema = z.strictObject(judgeFields);

export const TrajectoryJudgeEntrySchema = z.strictObject({
  ...judgeFields,
  group: z.boolean().optional().meta({
    description:
      'Judge the episodes of a group against each other in one call (applied by the trainer after the group finishes). Default false.',
  }),
});

/** `answer:` — the submitted answer against the expected one. */
export const AnswerEntrySchema = z.strictObject({
  expected: z
    .union([z.string(), z.number(), z.array(z.union([z.string(), z.number()])).min(1)], {
      error: 'expected an answer, or a list of accepted answers',
    })
    .meta({ description: 'The expected answer(s); {{field}} is filled from a dataset row.' }),
  match: z
    .enum(ANSWER_MATCHES)
    .optional()
    .meta({ description: 'How answers are compared. Default normalized.' }),
  tolerance: z.number().min(0).optional().meta({ description: 'numeric: absolute tolerance. Default 1e-6.' }),
  relative_tolerance: z
    .number()
    .min(0)
    .optional()
    .meta({ description: 'numeric: relative tolerance. Default 0.' }),
  flags: z
    .string()
    .regex(/^[imsu]*$/, { error: 'expected regex flags among i, m, s, u' })
    .optional()
    .meta({ description: 'regex: flags. Default none.' }),
  name: nameSchema.optional(),
  weight: weightSchema.optional(),
});

/** `verifier:` — sets the weight of the verifier's reward. */
export const VerifierEntrySchema = z.strictObject({ weight: weightSchema.optional() });

/** Options rules accept beside `rule:`. */
const ruleOptionShape = {
  require: z
    .enum(['text', 'tool_call', 'text_or_tool_call', 'text_and_tool_call'])
    .optional()
    .meta({ description: 'format: what a turn must hold. Default text_or_tool_call.' }),
  pattern: z
    .string()
    .optional()
    .meta({ description: "format: a regular expression the turn's text must match." }),
  window: z
    .number()
    .int()
    .positive()
    .optional()
    .meta({ description: 'repeat: how many previous turns to compare with. Default all.' }),
  count: z
    .enum(['completion', 'total'])
    .optional()
    .meta({ description: 'tokens: which tokens count. Default completion.' }),
  per: z
    .number()
    .positive()
    .optional()
    .meta({ description: 'tokens: tokens per unit of penalty. Default 1000.' }),
};

const RULE_OPTIONS: Record<TurnRuleName, readonly (keyof typeof ruleOptionShape)[]> = {
  tool_error: [],
  invalid_call: [],
  format: ['require', 'pattern'],
  repeat: ['window'],
  tokens: ['count', 'per'],
  cost: [],
  truncated: [],
  refused: [],
};

/** One `turn:` entry: exactly one of `rule`, `progress`, `model`, `page`, `grounding`, `judge`. */
export const TurnRewardEntrySchema = z
  .strictObject({
    rule: z.enum(TURN_RULES).optional(),
    progress: ProgressEntrySchema.optional(),
    model: TurnModelEntrySchema.optional(),
    page: PageEntrySchema.optional(),
    grounding: GroundingEntrySchema.optional(),
    judge: TurnJudgeEntrySchema.optional(),
    name: nameSchema.optional(),
    weight: weightSchema.optional(),
    ...ruleOptionShape,
  })
  .superRefine((entry, context) => {
    const kinds = (['rule', 'progress', 'model', 'page', 'grounding', 'judge'] as const).filter(
      (kind) => entry[kind] !== undefined,
    );
    if (kinds.length !== 1) {
      context.addIssue({
        code: 'custom',
        message: `expected exactly one of rule, progress, model, page, grounding, judge; got ${kinds.length === 0 ? 'none' : kinds.join(', ')}`,
      });
      return;
    }
    const allowed: readonly string[] = entry.rule ? RULE_OPTIONS[entry.rule] : [];
    for (const option of Object.keys(ruleOptionShape)) {
      if (entry[option as keyof typeof ruleOptionShape] === undefined || allowed.includes(option)) continue;
      context.addIssue({
        code: 'custom',
        path: [option],
        message: entry.rule
          ? `rule ${entry.rule} takes no "${option}"`
          : `"${option}" belongs to a rule entry`,
      });
    }
    checkNestedSiblings(entry, kinds[0]!, context);
    if (entry.pattern !== undefined) {
      try {
        new RegExp(entry.pattern);
      } catch (error) {
        context.addIssue({
          code: 'custom',
          path: ['pattern'],
          message: `not a valid regular expression: ${String(error)}`,
        });
      }
    }
  });

/** One `trajectory:` entry: exactly one of `verifier`, `answer`, `model`, `judge`. */
export const TrajectoryRewardEntrySchema = z
  .strictObject({
    verifier: VerifierEntrySchema.optional(),
    answer: AnswerEntrySchema.optional(),
    model: TrajectoryModelEntrySchema.optional(),
    judge: TrajectoryJudgeEntrySchema.optional(),
    name: nameSchema.optional(),
    weight: weightSchema.optional(),
  })
  .superRefine((entry, context) => {
    const kinds = (['verifier', 'answer', 'model', 'judge'] as const).filter(
      (kind) => entry[kind] !== undefined,
    );
    if (kinds.length !== 1) {
      context.addIssue({
        code: 'custom',
        message: `expected exactly one of verifier, answer, model, judge; got ${kinds.length === 0 ? 'none' : kinds.join(', ')}`,
      });
      return;
    }
    if (kinds[0] === 'verifier' && entry.name !== undefined) {
      context.addIssue({
        code: 'custom',
        path: ['name'],
        message: 'the verifier component is always named "verifier"',
      });
    }
    checkNestedSiblings(entry, kinds[0]!, context);
    const answer = entry.answer;
    if (answer?.match === 'regex') {
      for (const [index, pattern] of [answer.expected].flat().entries()) {
        try {
          new RegExp(String(pattern), answer.flags ?? '');
        } catch (error) {
          context.addIssue({
            code: 'custom',
            path: ['answer', 'expected', ...(Array.isArray(answer.expected) ? [index] : [])],
            message: `not a valid regular expression: ${String(error)}`,
          });
        }
      }
    }
  });

/** A `weight`/`name` may sit beside the kind key or inside its mapping, not both. */
function checkNestedSiblings(
  entry: { name?: string | undefined; weight?: number | undefined } & Record<string, unknown>,
  kind: string,
  context: z.RefinementCtx,
): void {
  const inner = entry[kind];
  if (inner === null || typeof inner !== 'object') return;
  for (const key of ['name', 'weight'] as const) {
    if (entry[key] !== undefined && (inner as Record<string, unknown>)[key] !== undefined) {
      context.addIssue({
        code: 'custom',
        path: [key],
        message: `"${key}" is given both here and inside ${kind}: keep one`,
      });
    }
  }
}

/** One `constraints:` entry: a cost recorded apart from the reward. */
export const ConstraintEntrySchema = z.strictObject({
  cost: z.enum(CONSTRAINT_KINDS).meta({ description: 'What is measured on the episode.' }),
  limit: z
    .number()
    .positive()
    .optional()
    .meta({ description: 'The budget; recorded with the value. Default none.' }),
  name: nameSchema.optional(),
});

/** The `rewards:` section of task.yaml (see the module comment). */
export const rewardsTaskExtension = z
  .strictObject({
    turn: z.array(TurnRewardEntrySchema, { error: 'expected a list of turn rewards' }).optional(),
    trajectory: z
      .array(TrajectoryRewardEntrySchema, { error: 'expected a list of trajectory rewards' })
      .optional(),
    constraints: z.array(ConstraintEntrySchema, { error: 'expected a list of constraints' }).optional(),
  })
  .superRefine((section, context) => {
    const check = (names: (string | undefined)[], list: string) => {
      const seen = new Map<string, number>();
      names.forEach((name, index) => {
        if (name === undefined) return;
        const first = seen.get(name);
        if (first !== undefined) {
          context.addIssue({
            code: 'custom',
            path: [list, index],
            message: `a second component named "${name}" (the first is ${list}.${first}): give one a distinct name`,
          });
        } else {
          seen.set(name, index);
        }
      });
    };
    check((section.turn ?? []).map(turnEntryName), 'turn');
    check((section.trajectory ?? []).map(trajectoryEntryName), 'trajectory');
    check(
      (section.constraints ?? []).map((entry) => entry.name ?? entry.cost),
      'constraints',
    );
  })
  .meta({ description: 'Turn and trajectory rewards, and constraints kept apart from the reward.' });

export type RewardsSection = z.infer<typeof rewardsTaskExtension>;

/**
 * The host files a `rewards:` section names (judge rubrics, ONNX models and their specs),
 * which the task loader checks lie inside the task folder.
 */
export function rewardsTaskPaths(section: unknown): TaskPathRef[] {
  const refs: TaskPathRef[] = [];
  const parsed = section as RewardsSection;
  for (const list of ['turn', 'trajectory'] as const) {
    (parsed[list] ?? []).forEach((entry, index) => {
      const at = `${list}.${index}`;
      if (entry.judge) refs.push({ field: `${at}.judge.rubric`, path: entry.judge.rubric, kind: 'file' });
      if (entry.model) {
        const onnx = entry.model.onnx;
        refs.push({ field: `${at}.model.onnx`, path: onnx, kind: 'any' });
        // An .onnx file reads its spec from beside it.
        if (onnx.endsWith('.onnx')) {
          for (const spec of [onnx.replace(/\.onnx$/, '.spec.json'), onnx.replace(/[^/]*$/, 'spec.json')])
            refs.push({ field: `${at}.model.onnx`, path: spec, kind: 'file', optional: true });
        }
      }
    });
  }
  return refs;
}
declareTaskPaths(rewardsTaskExtension, rewardsTaskPaths);
export type TurnRewardEntry = z.infer<typeof TurnRewardEntrySchema>;
export type TrajectoryRewardEntry = z.infer<typeof TrajectoryRewardEntrySchema>;
export type ConstraintEntry = z.infer<typeof ConstraintEntrySchema>;

/** The component name of a turn entry (undefined for an entry that does not parse). */
export function turnEntryName(entry: TurnRewardEntry): string | undefined {
  return (
    entry.name ??
    entry.progress?.name ??
    entry.model?.name ??
    entry.page?.name ??
    entry.grounding?.name ??
    entry.judge?.name ??
    entry.rule ??
    (entry.progress
      ? 'progress'
      : entry.model
        ? 'model'
        : entry.page
          ? 'page'
          : entry.grounding
            ? 'grounding'
            : entry.judge
              ? 'judge'
              : undefined)
  );
}

/** The component name of a trajectory entry. */
export function trajectoryEntryName(entry: TrajectoryRewardEntry): string | undefined {
  if (entry.verifier) return 'verifier';
  return (
    entry.name ??
    entry.answer?.name ??
    entry.model?.name ??
    entry.judge?.name ??
    (entry.answer ? 'answer' : entry.model ? 'model' : entry.judge ? 'judge' : undefined)
  );
}

/** The weight of an entry: beside the kind key, inside it, or 1. */
export function entryWeight(
  entry: { weight?: number | undefined },
  inner: { weight?: number | undefined } | undefined,
): number {
  return entry.weight ?? inner?.weight ?? 1;
}
