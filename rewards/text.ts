/**
 * Text views of turns and episodes that reward models and judges read, and stable
 * hashing for caches. Renderings are deterministic: they leave out timings, ids and
 * anything else that differs between two runs of the same behaviour, so that a cached
 * judgement is found again.
 */
import { createHash } from 'node:crypto';
import type { TurnRecord } from '../harness/index.ts';

/** Characters of one tool output kept in a rendering (the rest is elided in the middle). */
const MAX_OUTPUT_CHARS = 4_000;

function clip(text: string, max = MAX_OUTPUT_CHARS): string {
  if (text.length <= max) return text;
  const half = Math.floor(max / 2);
  return `${text.slice(0, half)}\n…[${text.length - max} characters elided]…\n${text.slice(-half)}`;
}

/** The parts of a turn renderings read. */
export type RenderedTurn = Pick<TurnRecord, 'text' | 'toolCalls' | 'toolResults'>;

/**
 * One turn as text: the assistant's text, then each tool call as `→ name(arguments)` and
 * its result as `← output` (`← [error] output` when it failed).
 */
export function turnText(turn: RenderedTurn): string {
  const lines: string[] = [];
  if (turn.text) lines.push(turn.text);
  for (const call of turn.toolCalls) {
    lines.push(`→ ${call.name}(${call.arguments})`);
    const result = turn.toolResults.find((candidate) => candidate.callId === call.id);
    if (result) lines.push(`← ${result.isError ? '[error] ' : ''}${clip(result.output)}`);
  }
  return lines.join('\n');
}

/** The instruction and the turns as one transcript, turns headed `## Turn <n>`. */
export function renderTranscript(instruction: string, turns: readonly RenderedTurn[]): string {
  const parts = [`## Instruction\n${instruction}`];
  turns.forEach((turn, index) => parts.push(`## Turn ${index + 1}\n${turnText(turn)}`));
  return parts.join('\n\n');
}

/** JSON with object keys sorted at every depth, so equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return inner;
    return Object.fromEntries(
      Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
  });
}

/** Hex SHA-256 of the canonical JSON of `value`. */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/** Parses JSON text, or returns undefined when it is not JSON (callers check the shape). */
export function tryParseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Not JSON is an expected outcome for agent- or model-written text.
    return undefined;
  }
}
