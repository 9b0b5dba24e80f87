import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { rewardsTaskExtension } from '../../../rewards/index.ts';

/** The section as the issue writes it. */
const DOCUMENTED = `
turn:
  - progress: { command: "python3 -m pytest -q tests/visible | tail -1", parse: passed_fraction }
  - rule: tool_error
    weight: 0.1
  - model: { onnx: rewards/progress.onnx, input: turn_text }
trajectory:
  - verifier: { weight: 1.0 }
  - judge: { agent: "openai:gpt-4.1-mini", rubric: rubric.md, weight: 0.2 }
  - answer: { expected: "42", match: numeric, tolerance: 1e-6 }
constraints:
  - cost: tokens
    limit: 20000
`;

function messages(section: unknown): string[] {
  const parsed = rewardsTaskExtension.safeParse(section);
  return parsed.success
    ? []
    : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

describe('rewardsTaskExtension', () => {
  it('accepts the documented section', () => {
    const parsed = rewardsTaskExtension.parse(parseYaml(DOCUMENTED));
    expect(parsed.turn).toHaveLength(3);
    expect(parsed.trajectory?.[1]?.judge).toEqual({
      agent: 'openai:gpt-4.1-mini',
      rubric: 'rubric.md',
      weight: 0.2,
    });
    expect(parsed.constraints).toEqual([{ cost: 'tokens', limit: 20000 }]);
  });

  it('refuses unknown keys with their path', () => {
    expect(messages({ turn: [{ rule: 'tool_error', wieght: 0.1 }] })).toEqual([
      expect.stringMatching(/^turn\.0: .*wieght/),
    ]);
    expect(messages({ turn: [{ progress: { command: 'x', parse: 'number', every: 2 } }] })).toEqual([
      expect.stringMatching(/^turn\.0\.progress: .*every/),
    ]);
    expect(messages({ bonus: [] })).toEqual([expect.stringMatching(/bonus/)]);
  });

  it('wants exactly one kind per entry', () => {
    expect(messages({ turn: [{ weight: 1 }] })).toEqual([
      'turn.0: expected exactly one of rule, progress, model, page, grounding, judge; got none',
    ]);
    expect(messages({ trajectory: [{ verifier: {}, answer: { expected: 1 } }] })).toEqual([
      'trajectory.0: expected exactly one of verifier, answer, model, judge; got verifier, answer',
    ]);
  });

  it('refuses unknown rules, parsers and constraint kinds', () => {
    expect(messages({ turn: [{ rule: 'vibes' }] })).toHaveLength(1);
    expect(messages({ turn: [{ progress: { command: 'x', parse: 'percent' } }] })).toEqual([
      'turn.0.progress.parse: expected passed_fraction, number or json:<key>',
    ]);
    expect(messages({ constraints: [{ cost: 'joules' }] })).toHaveLength(1);
  });

  it('allows rule options only on the rules that take them', () => {
    expect(messages({ turn: [{ rule: 'format', require: 'tool_call', pattern: '^ok' }] })).toEqual([]);
    expect(messages({ turn: [{ rule: 'tool_error', window: 3 }] })).toEqual(
      ['window: rule tool_error takes no "window"'].map((m) => `turn.0.${m}`),
    );
    expect(messages({ turn: [{ rule: 'format', pattern: '(' }] })[0]).toMatch(
      /^turn\.0\.pattern: not a valid regular expression/,
    );
  });

  it('refuses a weight given both beside and inside the kind', () => {
    expect(
      messages({ trajectory: [{ judge: { agent: 'a', rubric: 'r.md', weight: 1 }, weight: 2 }] }),
    ).toEqual(['trajectory.0.weight: "weight" is given both here and inside judge: keep one']);
  });

  it('refuses two components of the same name in a list', () => {
    expect(messages({ turn: [{ rule: 'repeat' }, { rule: 'repeat', window: 2 }] })).toEqual([
      'turn.1: a second component named "repeat" (the first is turn.0): give one a distinct name',
    ]);
    expect(
      messages({ turn: [{ rule: 'repeat' }, { rule: 'repeat', window: 2, name: 'repeat_recent' }] }),
    ).toEqual([]);
  });

  it('refuses absolute paths and invalid regexes in answers', () => {
    expect(messages({ turn: [{ model: { onnx: '/etc/model.onnx' } }] })[0]).toMatch(
      /^turn\.0\.model\.onnx: .*relative/,
    );
    expect(messages({ trajectory: [{ answer: { expected: ['ok', '('], match: 'regex' } }] })[0]).toMatch(
      /^trajectory\.0\.answer\.expected\.1: not a valid regular expression/,
    );
  });

  it('names the verifier always verifier', () => {
    expect(messages({ trajectory: [{ verifier: {}, name: 'tests' }] })).toEqual([
      'trajectory.0.name: the verifier component is always named "verifier"',
    ]);
  });
});
