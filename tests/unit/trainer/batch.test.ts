import { describe, expect, it } from 'vitest';
import { PaddockChatTemplate, byteTokenizer } from '../../../agents/onnx/index.ts';
import { isPaddockError } from '../../../harness/index.ts';
import { demonstrationSequence, episodeSequences } from '../../../trainers/rl/index.ts';
import { episode, turn } from './helpers.ts';

describe('episodeSequences', () => {
  it('makes one sequence of a growing context, mask 1 exactly on sampled ids', () => {
    const record = episode(
      'e',
      [
        turn(0, { promptIds: [1, 2, 3], completionIds: [4, 5], completionLogprobs: [-0.1, -0.2] }),
        turn(1, { promptIds: [1, 2, 3, 4, 5, 6, 7], completionIds: [8], completionLogprobs: [-0.3] }),
      ],
      1,
    );
    const [sequence, ...rest] = episodeSequences(record, [0.5, -1]);
    expect(rest).toEqual([]);
    expect(sequence!.ids).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(sequence!.mask).toEqual([0, 0, 0, 1, 1, 0, 0, 1]);
    expect(sequence!.advantages).toEqual([0, 0, 0, 0.5, 0.5, 0, 0, -1]);
    expect(sequence!.logprobs).toEqual([0, 0, 0, -0.1, -0.2, 0, 0, -0.3]);
    expect(sequence!.turns).toEqual([0, 1]);
  });

  it('starts a new sequence where a prompt does not continue the context', () => {
    const record = episode(
      'e',
      [
        turn(0, { promptIds: [1, 2], completionIds: [3], completionLogprobs: [-1] }),
        turn(1, { promptIds: [9, 9, 9], completionIds: [4], completionLogprobs: [-2] }),
      ],
      0,
    );
    const sequences = episodeSequences(record, [1, 1]);
    expect(sequences.map((s) => s.ids)).toEqual([
      [1, 2, 3],
      [9, 9, 9, 4],
    ]);
    expect(sequences.map((s) => s.mask)).toEqual([
      [0, 0, 1],
      [0, 0, 0, 1],
    ]);
  });

  it('skips turns that sampled nothing', () => {
    const record = episode(
      'e',
      [
        turn(0, { promptIds: [1], completionIds: [2], completionLogprobs: [-1] }),
        turn(1, { promptIds: [1, 2, 3, 4, 5, 6], completionIds: [], completionLogprobs: [] }),
      ],
      0,
    );
    expect(episodeSequences(record, [1, 1]).map((s) => s.ids)).toEqual([[1, 2]]);
  });

  it('refuses episodes without token records', () => {
    try {
      episodeSequences(episode('e', [turn(0, undefined)], 1), [1]);
      expect.unreachable();
    } catch (error) {
      expect(isPaddockError(error, 'CONFIG_INVALID')).toBe(true);
      expect((error as Error).message).toMatch(/token-exact/);
    }
  });
});

describe('demonstrationSequence', () => {
  it('masks the assistant messages and their end token, not their role token', () => {
    const tokenizer = byteTokenizer();
    const template = new PaddockChatTemplate(tokenizer);
    const { ids, mask } = demonstrationSequence(
      {
        messages: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: 'a' },
        ],
        tools: [],
      },
      template,
    );
    const trained = ids.filter((_, i) => mask[i] === 1).map((id) => tokenizer.display(id));
    expect(trained).toEqual(['a', '<|end|>']);
    expect(ids.length).toBe(mask.length);
  });
});
