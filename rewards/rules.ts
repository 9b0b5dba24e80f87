/**
 * Rule rewards over one turn. Every rule's value is a penalty (≤ 0) and the weight scales
 * it, so `- rule: tool_error, weight: 0.1` costs 0.1 per failing tool call. Rules read only
 * the turn record (and the previous ones): they never touch the sandbox, and keep nothing
 * per episode (opening one for an episode returns the same stateless scorer).
 */
import type { TurnRecord, TurnReward, TurnRewardFunction } from '../harness/index.ts';
import type { TurnRuleName } from './schema.ts';
import { canonicalJson, tryParseJson } from './text.ts';

/** Name and weight of a reward function. */
export interface ComponentOptions {
  /** Component name in the breakdown. @default the kind */
  name?: string;
  /** @default 1 */
  weight?: number;
}

function rule(
  kind: string,
  options: ComponentOptions,
  score: (turn: TurnRecord, previousTurns: readonly TurnRecord[]) => number,
): TurnRewardFunction {
  const opened: TurnReward = { score: async ({ turn, previousTurns }) => score(turn, previousTurns) };
  return {
    name: options.name ?? kind,
    weight: options.weight ?? 1,
    open: () => opened,
  };
}

/** −1 per tool call of the turn that ran and failed (`problem: 'tool-error'`). */
export function toolErrorReward(options: ComponentOptions = {}): TurnRewardFunction {
  return rule(
    'tool_error',
    options,
    (turn) => 0 - turn.toolResults.filter((result) => result.problem === 'tool-error').length,
  );
}

/** −1 per call to an unknown tool, with arguments that are not JSON, or that fail the tool's schema. */
export function invalidCallReward(options: ComponentOptions = {}): TurnRewardFunction {
  const invalid = new Set(['unknown-tool', 'invalid-json', 'invalid-arguments']);
  return rule(
    'invalid_call',
    options,
    (turn) =>
      0 -
      turn.toolResults.filter((result) => result.problem !== undefined && invalid.has(result.problem)).length,
  );
}

export interface FormatRewardOptions extends ComponentOptions {
  /** What the turn must hold. @default 'text_or_tool_call' */
  require?: 'text' | 'tool_call' | 'text_or_tool_call' | 'text_and_tool_call';
  /** A regular expression the turn's text must match (searched, not anchored). */
  pattern?: string;
}

/** −1 when the turn misses the required shape (text, tool call) or its text misses `pattern`; else 0. */
export function formatReward(options: FormatRewardOptions = {}): TurnRewardFunction {
  const require = options.require ?? 'text_or_tool_call';
  const pattern = options.pattern === undefined ? undefined : new RegExp(options.pattern);
  return rule('format', options, (turn) => {
    const hasText = (turn.text ?? '').trim() !== '';
    const hasCall = turn.toolCalls.length > 0;
    const shaped =
      require === 'text'
        ? hasText
        : require === 'tool_call'
          ? hasCall
          : require === 'text_and_tool_call'
            ? hasText && hasCall
            : hasText || hasCall;
    const matches = pattern === undefined || pattern.test(turn.text ?? '');
    return shaped && matches ? 0 : -1;
  });
}

/** The action of a turn, comparable across turns: its calls with canonical arguments, or its text. */
export function actionKey(turn: Pick<TurnRecord, 'text' | 'toolCalls'>): string {
  if (turn.toolCalls.length === 0) return `text:${(turn.text ?? '').trim()}`;
  return canonicalJson(
    turn.toolCalls.map((call) => {
      const parsed = tryParseJson(call.arguments);
      return { name: call.name, arguments: parsed === undefined ? call.arguments : parsed };
    }),
  );
}

export interface RepeatRewardOptions extends ComponentOptions {
  /** How many previous turns are compared. @default all */
  window?: number;
}

/** −1 when the turn repeats the action of a previous turn (same calls and arguments, or same text). */
export function repeatReward(options: RepeatRewardOptions = {}): TurnRewardFunction {
  return rule('repeat', options, (turn, previousTurns) => {
    const key = actionKey(turn);
    const recent = options.window === undefined ? previousTurns : previousTurns.slice(-options.window);
    return recent.some((previous) => actionKey(previous) === key) ? -1 : 0;
  });
}

export interface TokensRewardOptions extends ComponentOptions {
  /** `completion` tokens of the turn, or `total` (prompt + completion). @default 'completion' */
  count?: 'completion' | 'total';
  /** Tokens per unit of penalty. @default 1000 */
  per?: number;
}

/** −tokens/per: the turn's token use (0 when the backend reported no usage). */
export function tokensReward(options: TokensRewardOptions = {}): TurnRewardFunction {
  const per = options.per ?? 1000;
  return rule('tokens', options, (turn) => {
    const usage = turn.usage;
    if (!usage) return 0;
    const tokens =
      options.count === 'total' ? usage.promptTokens + usage.completionTokens : usage.completionTokens;
    return 0 - tokens / per;
  });
}

/** −USD spent on the turn's model call (0 when no price was known). */
export function costReward(options: ComponentOptions = {}): TurnRewardFunction {
  return rule('cost', options, (turn) => 0 - (turn.costUsd ?? 0));
}

/** −1 when the turn's output was cut (its token limit or context window: `stopReason` length or context-exceeded). */
export function truncatedReward(options: ComponentOptions = {}): TurnRewardFunction {
  return rule('truncated', options, (turn) =>
    turn.stopReason === 'length' || turn.stopReason === 'context-exceeded' ? -1 : 0,
  );
}

/** −1 when the model refused or the provider filtered the turn (`stopReason` refusal or content-filter). */
export function refusedReward(options: ComponentOptions = {}): TurnRewardFunction {
  return rule('refused', options, (turn) =>
    turn.stopReason === 'refusal' || turn.stopReason === 'content-filter' ? -1 : 0,
  );
}

/** The rule named `kind` with its options. */
export function ruleReward(
  kind: TurnRuleName,
  options: ComponentOptions & FormatRewardOptions & RepeatRewardOptions & TokensRewardOptions = {},
): TurnRewardFunction {
  switch (kind) {
    case 'tool_error':
      return toolErrorReward(options);
    case 'invalid_call':
      return invalidCallReward(options);
    case 'format':
      return formatReward(options);
    case 'repeat':
      return repeatReward(options);
    case 'tokens':
      return tokensReward(options);
    case 'cost':
      return costReward(options);
    case 'truncated':
      return truncatedReward(options);
    case 'refused':
      return refusedReward(options);
  }
}
