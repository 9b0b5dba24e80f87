import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPaddockError } from '../../../harness/index.ts';
import {
  OnnxRewardModel,
  encodeText,
  onnxTrajectoryReward,
  onnxTurnReward,
  renderTranscript,
  turnText,
  type RewardModelSpec,
} from '../../../rewards/index.ts';
import { makeTask } from '../../fakes/tasks.ts';
import { bashTurn, makeEpisode, makeTurn } from '../../fixtures/rewards/records.ts';
import { scoreOneTurn } from '../../fixtures/rewards/turn-reward.ts';

const MODEL_DIR = fileURLToPath(new URL('../../fixtures/rewards/byte-reward', import.meta.url));
const INT64_MODEL_DIR = fileURLToPath(new URL('../../fixtures/rewards/byte-reward-int64', import.meta.url));
const signal = new AbortController().signal;

describe('encodeText', () => {
  const bytes: RewardModelSpec = {
    format: 'paddock-reward-model/1',
    tokenizer: { kind: 'bytes' },
    maxLength: 4,
    inputs: { ids: 'input_ids' },
    output: 'score',
  };

  it('maps bytes to ids 1..256 and keeps the end of a long text', () => {
    expect(Array.from(encodeText('ab', bytes))).toEqual([98, 99]);
    expect(Array.from(encodeText('abcdef', bytes))).toEqual([100, 101, 102, 103]);
    expect(Array.from(encodeText('é', bytes))).toEqual([0xc3 + 1, 0xa9 + 1]);
  });

  it('keeps the start when truncating right', () => {
    expect(Array.from(encodeText('abcdef', { ...bytes, truncate: 'right' }))).toEqual([98, 99, 100, 101]);
  });

  it('cuts a long text inside a character at the same bytes as its whole encoding', () => {
    // 😀 is a surrogate pair of 4 bytes; the cut falls inside it.
    expect(Array.from(encodeText('x😀abc', bytes))).toEqual([0x80 + 1, 98, 99, 100]);
    expect(Array.from(encodeText('abc😀x', { ...bytes, truncate: 'right' }))).toEqual([
      98,
      99,
      100,
      0xf0 + 1,
    ]);
  });

  it('reads only the kept part of a long text, cut at the same bytes as the whole text', () => {
    // Characters of 1 to 4 bytes, so that the cut falls inside some of them.
    const pieces = ['a', 'é', '€', '😀', '\n', '\ud800']; // the last one a lone surrogate
    for (let seed = 1; seed <= 200; seed++) {
      let text = '';
      for (let i = 0, x = seed; i < 40 + (seed % 17); i++, x = (x * 1103515245 + 12345) % 2 ** 31)
        text += pieces[x % pieces.length];
      const whole = Buffer.from(text, 'utf8');
      for (const truncate of ['left', 'right'] as const) {
        const spec = { ...bytes, maxLength: 1 + (seed % 23), truncate };
        const kept =
          whole.length <= spec.maxLength
            ? whole
            : truncate === 'left'
              ? whole.subarray(whole.length - spec.maxLength)
              : whole.subarray(0, spec.maxLength);
        expect(Array.from(encodeText(text, spec)), `${truncate} ${JSON.stringify(text)}`).toEqual(
          Array.from(kept, (byte) => byte + 1),
        );
      }
    }
  });

  it('hashes words and punctuation into the vocabulary', () => {
    const hashed: RewardModelSpec = {
      ...bytes,
      maxLength: 100,
      tokenizer: { kind: 'hashed', vocabSize: 50 },
    };
    const ids = Array.from(encodeText('Tests PASSED, tests passed.', hashed));
    expect(ids).toHaveLength(6);
    expect(ids.every((id) => id >= 1 && id < 50)).toBe(true);
    expect(ids.slice(0, 2)).toEqual(ids.slice(3, 5)); // lowercased by default
    expect(ids[2]).toBe(encodeText(',', hashed)[0]);
  });
});

describe('OnnxRewardModel', () => {
  let model: OnnxRewardModel;
  beforeAll(async () => {
    model = await OnnxRewardModel.load(MODEL_DIR);
  });
  afterAll(async () => {
    await model.close();
  });

  it('loads a model folder with its spec', () => {
    expect(model.spec.tokenizer).toEqual({ kind: 'bytes' });
    expect(model.spec.maxLength).toBe(512);
    expect(model.file).toBe(path.join(MODEL_DIR, 'model.onnx'));
  });

  it('scores outputs that look like progress above failures', async () => {
    const [good, bad] = await model.scoreTexts([
      '5 passed in 0.21s',
      'Traceback (most recent call last):\nNameError',
    ]);
    expect(good).toBeGreaterThan(0.5);
    expect(bad).toBeLessThan(0.5);
  });

  it('scores a text the same alone and padded inside a batch', async () => {
    const texts = ['ok', 'error: command not found', 'x'.repeat(600), '', 'Ran 3 tests\n\nOK'];
    const batched = await model.scoreTexts(texts);
    for (const [index, text] of texts.entries()) {
      expect(batched[index]).toBeCloseTo((await model.scoreTexts([text]))[0]!, 5);
    }
  });

  it('scores alike in batches of any length and order, and in concurrent batches', async () => {
    const texts = ['z'.repeat(700), 'Ran 3 tests\n\nOK', 'error', 'q'.repeat(300), '', '1 passed'];
    const alone: number[] = [];
    for (const text of texts) alone.push((await model.scoreTexts([text]))[0]!);
    // A long batch, then shorter ones (their padding must not keep the longer rows' ids).
    expect(await model.scoreTexts(texts)).toEqual(alone.map((score) => expect.closeTo(score, 5)));
    expect(await model.scoreTexts(texts.slice(1).reverse())).toEqual(
      alone
        .slice(1)
        .reverse()
        .map((score) => expect.closeTo(score, 5)),
    );
    // Three batches of two in flight at once.
    const small = await OnnxRewardModel.load(MODEL_DIR, { maxBatch: 2 });
    try {
      const scores = await Promise.all(texts.map((text) => small.score(text)));
      expect(small.inferences).toBe(3);
      expect(scores).toEqual(alone.map((score) => expect.closeTo(score, 5)));
    } finally {
      await small.close();
    }
  });

  it('feeds int64 ids and an attention mask to models that take them', async () => {
    const int64 = await OnnxRewardModel.load(INT64_MODEL_DIR);
    try {
      expect(int64.spec.inputs).toEqual({ ids: 'input_ids', mask: 'attention_mask', dtype: 'int64' });
      const texts = ['ok', 'Traceback (most recent call last):', 'y'.repeat(700), ''];
      const expected = await model.scoreTexts(texts);
      (await int64.scoreTexts(texts)).forEach((score, index) =>
        expect(score).toBeCloseTo(expected[index]!, 5),
      );
      // Again, shorter rows first, in the buffer of the batch before.
      const again = await int64.scoreTexts([...texts].reverse());
      expect(again).toEqual([...expected].reverse().map((score) => expect.closeTo(score, 5)));
    } finally {
      await int64.close();
    }
  });

  it('gathers concurrent score() calls into one inference', async () => {
    const before = model.inferences;
    const scores = await Promise.all(['a', 'bb', 'ccc', 'dddd'].map((text) => model.score(text)));
    expect(model.inferences - before).toBe(1);
    expect(scores).toHaveLength(4);
    expect(scores[1]).toBeCloseTo((await model.scoreTexts(['bb']))[0]!, 5);
  });

  it('rejects a call whose signal already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(model.score('x', { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('rewards a turn with the score of its text', async () => {
    const fn = onnxTurnReward(model, { weight: 0.5 });
    const turn = bashTurn('pytest', '3 passed in 0.1s');
    const value = await scoreOneTurn(fn, turn, [], { signal });
    expect(value).toBeCloseTo((await model.scoreTexts([turnText(turn)]))[0]!, 5);
    expect([fn.name, fn.weight]).toEqual(['model', 0.5]);
  });

  it('rewards the change of the score in progress mode', async () => {
    const task = makeTask();
    const first = bashTurn('pytest', 'E   assert 1 == 0\n1 failed in 0.1s', 'tool-error');
    const second = bashTurn('pytest', '1 passed in 0.1s');
    const fn = onnxTurnReward(model, { input: 'transcript', mode: 'progress', name: 'model_progress' });
    const value = await scoreOneTurn(fn, second, [first], { task, signal });
    const [before, after] = await model.scoreTexts([
      renderTranscript(task.instruction, [first]),
      renderTranscript(task.instruction, [first, second]),
    ]);
    expect(value).toBeCloseTo(after! - before!, 5);
  });

  it('scores a trajectory by its transcript, answer or final text', async () => {
    const task = makeTask();
    const episode = makeEpisode({ answer: 'All tests passed.', turns: [makeTurn({ text: 'error' })] });
    const [transcript, answer, final] = await model.scoreTexts([
      renderTranscript(task.instruction, episode.turns),
      'All tests passed.',
      'error',
    ]);
    for (const [input, expected] of [
      ['transcript', transcript],
      ['answer', answer],
      ['final_text', final],
    ] as const) {
      const fn = onnxTrajectoryReward(model, { input });
      expect(await fn.score({ task, episode, signal })).toBeCloseTo(expected!, 5);
    }
  });
});

describe('OnnxRewardModel.load', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'paddock-reward-model-'));
  copyFileSync(path.join(MODEL_DIR, 'model.onnx'), path.join(dir, 'reward.onnx'));

  it('finds spec.json beside an .onnx file', async () => {
    copyFileSync(path.join(MODEL_DIR, 'spec.json'), path.join(dir, 'spec.json'));
    const model = await OnnxRewardModel.load(path.join(dir, 'reward.onnx'));
    expect(await model.score('1 passed')).toBeGreaterThan(0.5);
    await model.close();
    await model.close();
    await expect(model.score('x')).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it("batches at most the spec's maxBatch texts per inference, unless told otherwise", async () => {
    const spec = JSON.parse(readFileSync(path.join(MODEL_DIR, 'spec.json'), 'utf8')) as object;
    writeFileSync(path.join(dir, 'small.spec.json'), JSON.stringify({ ...spec, maxBatch: 2 }));
    copyFileSync(path.join(MODEL_DIR, 'model.onnx'), path.join(dir, 'small.onnx'));
    const texts = ['a', 'b', 'c', 'd', 'e'];
    const small = await OnnxRewardModel.load(path.join(dir, 'small.onnx'));
    const told = await OnnxRewardModel.load(path.join(dir, 'small.onnx'), { maxBatch: 5 });
    try {
      await small.scoreTexts(texts);
      await Promise.all(texts.map((text) => small.score(text)));
      expect(small.inferences).toBe(6);
      await told.scoreTexts(texts);
      expect(told.inferences).toBe(1);
    } finally {
      await small.close();
      await told.close();
    }
  });

  it('refuses a spec that names an output the model lacks', async () => {
    writeFileSync(
      path.join(dir, 'reward.spec.json'),
      JSON.stringify({
        format: 'paddock-reward-model/1',
        tokenizer: { kind: 'bytes' },
        maxLength: 8,
        inputs: { ids: 'input_ids', mask: 'attention_mask' },
        output: 'logits',
      }),
    );
    const error: unknown = await OnnxRewardModel.load(path.join(dir, 'reward.onnx')).catch(
      (caught: unknown) => caught,
    );
    expect(isPaddockError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(/output logits/);
  });

  it('refuses a folder without a spec, and an invalid spec, naming the file', async () => {
    await expect(OnnxRewardModel.load(tmpdir())).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    writeFileSync(
      path.join(dir, 'reward.spec.json'),
      JSON.stringify({ format: 'paddock-reward-model/1', maxLength: -1 }),
    );
    await expect(OnnxRewardModel.load(path.join(dir, 'reward.onnx'))).rejects.toThrow(
      /reward\.spec\.json: invalid reward model spec/,
    );
  });
});
