/**
 * Episode records with screenshots, as the episode loop makes them: a screenshot on the
 * first user message, and one per browser tool result, the same `ImagePart` in the tool
 * message and in the turn's tool result. Bytes are made from a seed (no real PNG needed:
 * the store and the export only hash and copy them).
 */
import { createHash } from 'node:crypto';
import type { EpisodeRecord, ImagePart, Message, RunManifest, TurnRecord } from '../../harness/index.ts';

/** `size` bytes that depend on `seed` and do not compress (like a PNG's). */
export function shotBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let offset = 0; offset < size; offset += block.length) {
    block.copy(out, offset);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** An inline PNG screenshot of `bytes`. */
export function shot(bytes: Buffer, mimeType = 'image/png'): ImagePart {
  return { mimeType, dataBase64: bytes.toString('base64') };
}

export interface ScreenshotEpisodeOptions {
  runId?: string;
  /** The screenshot on the first user message. */
  first?: ImagePart;
  /** One screenshot per turn (its tool result and tool message). */
  shots: ImagePart[];
  /** Token-exact turns (by index): each gets a prompt that extends the previous turn's sequence. */
  tokenTurns?: number[];
}

/** A finished episode of `shots.length` turns, each calling `browser_click` and seeing a screenshot. */
export function screenshotEpisode(episodeId: string, options: ScreenshotEpisodeOptions): EpisodeRecord {
  const messages: Message[] = [
    { role: 'system', content: 'You drive a browser.' },
    {
      role: 'user',
      content: 'Click the button.',
      ...(options.first ? { images: [options.first] } : {}),
    },
  ];
  const turns: TurnRecord[] = [];
  let sequence: number[] = [1, 2, 3];
  options.shots.forEach((image, index) => {
    const call = { id: `c${index}`, name: 'browser_click', arguments: `{"ref":"e${index}"}` };
    const images = [image];
    messages.push({ role: 'assistant', content: null, toolCalls: [call] });
    messages.push({ role: 'tool', toolCallId: call.id, name: call.name, content: 'clicked', images });
    const exact = options.tokenTurns?.includes(index) === true;
    const completionIds = [100 + index, 200 + index];
    const tokens = exact
      ? {
          promptIds: [...sequence],
          completionIds,
          completionLogprobs: completionIds.map(() => -0.5),
        }
      : undefined;
    if (exact) sequence = [...sequence, ...completionIds, 50 + index];
    turns.push({
      index,
      text: null,
      toolCalls: [call],
      toolResults: [
        { callId: call.id, name: call.name, output: 'clicked', images, isError: false, durationMs: 1 },
      ],
      ...(tokens ? { tokens } : {}),
      rewards: {},
      reward: 0,
      startedAt: '2026-12-01T00:00:00.000Z',
      agentMs: 1,
      toolMs: 1,
    });
  });
  return {
    runId: options.runId ?? 'run-1',
    episodeId,
    taskId: episodeId.split('#')[0]!,
    epoch: 0,
    seed: 1,
    attempt: 1,
    agent: 'scripted',
    status: 'completed',
    previousAttempts: [],
    messages,
    tools: [{ name: 'browser_click', description: 'Clicks.', inputSchema: { type: 'object' } }],
    turns,
    reward: { total: 1, components: {}, constraints: {} },
    usage: { promptTokens: 10, completionTokens: 2 },
    stats: {
      toolCalls: turns.length,
      toolProblems: { 'unknown-tool': 0, 'invalid-json': 0, 'invalid-arguments': 0, 'tool-error': 0 },
      emptyTurns: 0,
    },
    startedAt: '2026-12-01T00:00:00.000Z',
    endedAt: '2026-12-01T00:00:01.000Z',
    durationMs: 1000,
  };
}

/** A manifest planning `ids`. */
export function screenshotManifest(ids: readonly string[], runId = 'run-1'): RunManifest {
  return {
    runId,
    createdAt: '2026-12-01T00:00:00.000Z',
    config: { agent: 'scripted' },
    plan: ids.map((episodeId) => ({ episodeId, taskId: episodeId.split('#')[0]!, epoch: 0, seed: 1 })),
  };
}
