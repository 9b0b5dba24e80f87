import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fieldEnvName, loadTasks, validateTasks } from '../../../tasks/index.ts';
import { TESTS_ONLY, removeTrees, writeTree } from './helpers.ts';

afterAll(removeTrees);

const TASK_YAML = `
dataset: { file: rows.jsonl }
instruction: "Compute {{ a }} + {{b}}."
environment: { env: { VISIBLE: "yes" } }
verifier:
  command: bash /tests/test.sh {{a}}
  env: { EXPECTED: "{{sum}}" }
solution: { script: solution/solve.sh, env: { HINT: "{{a}}" } }
metadata: { tags: [math] }
`;

const ROWS = [
  JSON.stringify({ id: 'first', a: 1, b: 2, sum: 3 }),
  '',
  JSON.stringify({ id: 'second', a: 10, b: 'x y', sum: '10x y', extra: { deep: [1] } }),
  JSON.stringify({ a: 4, b: 5, sum: 9 }),
].join('\n');

async function datasetTask(rows: string, taskYaml = TASK_YAML) {
  return writeTree(
    { 'task.yaml': taskYaml, 'rows.jsonl': rows, 'solution/solve.sh': 'true\n', ...TESTS_ONLY },
    'sums',
  );
}

describe('dataset expansion', () => {
  it('makes one task per row, named by the row id or else the line number', async () => {
    const dir = await datasetTask(ROWS);
    const tasks = await loadTasks(dir);
    // A task folder given on its own belongs to its parent folder's suite.
    const suite = path.basename(path.dirname(dir));
    expect(tasks.map((task) => task.id)).toEqual([
      `${suite}/sums@first`,
      `${suite}/sums@second`,
      `${suite}/sums@4`,
    ]);
  });

  it('fills {{field}} in the instruction and the verifier command from the row', async () => {
    const [first, second] = await loadTasks(await datasetTask(ROWS));
    expect(first?.instruction).toBe('Compute 1 + 2.');
    expect(second?.instruction).toBe('Compute 10 + x y.');
    expect(second?.verifier?.command).toBe('bash /tests/test.sh 10');
  });

  it('gives every row field to the verifier and the solution as PADDOCK_FIELD_<NAME>', async () => {
    const [, second] = await loadTasks(await datasetTask(ROWS));
    expect(second?.verifier?.env).toEqual({
      PADDOCK_FIELD_ID: 'second',
      PADDOCK_FIELD_A: '10',
      PADDOCK_FIELD_B: 'x y',
      PADDOCK_FIELD_SUM: '10x y',
      PADDOCK_FIELD_EXTRA: '{"deep":[1]}',
      EXPECTED: '10x y',
    });
    expect(second?.solution).toMatchObject({
      kind: 'script',
      env: expect.objectContaining({ HINT: '10', PADDOCK_FIELD_SUM: '10x y' }),
    });
  });

  it("keeps row values out of the agent's environment", async () => {
    const [first] = await loadTasks(await datasetTask(ROWS));
    expect(first?.environment?.env).toEqual({ VISIBLE: 'yes' });
    expect(JSON.stringify(first?.environment)).not.toContain('PADDOCK_FIELD');
  });

  it('records the row and where it came from in metadata', async () => {
    const [, second] = await loadTasks(await datasetTask(ROWS));
    expect(second?.metadata).toEqual({
      tags: ['math'],
      row: { id: 'second', a: 10, b: 'x y', sum: '10x y', extra: { deep: [1] } },
      dataset: { file: 'rows.jsonl', line: 3, id: 'second' },
    });
  });

  it('uses the field named by id_field as the row id', async () => {
    const dir = await datasetTask(
      JSON.stringify({ key: 'k1', a: 1, b: 1, sum: 2 }),
      TASK_YAML.replace('{ file: rows.jsonl }', '{ file: rows.jsonl, id_field: key }'),
    );
    expect((await loadTasks(dir)).map((task) => task.id)).toEqual([
      `${path.basename(path.dirname(dir))}/sums@k1`,
    ]);
  });

  it('fills string arguments of reference tool calls', async () => {
    const dir = await writeTree(
      {
        'task.yaml':
          'dataset: { file: rows.jsonl }\ninstruction: "Say {{word}}"\nsolution: [{ tool: submit, arguments: { answer: "{{word}}!" } }]\n',
        'rows.jsonl': '{"word": "hi"}\n',
        ...TESTS_ONLY,
      },
      'words',
    );
    const [task] = await loadTasks(dir);
    expect(task?.solution).toEqual({
      kind: 'actions',
      actions: [{ tool: 'submit', arguments: { answer: 'hi!' } }],
    });
  });

  it('leaves {{…}} alone in a task without a dataset', async () => {
    const dir = await writeTree({ 'task.yaml': 'instruction: "Print {{x}}"\n', ...TESTS_ONLY }, 'plain');
    const [task] = await loadTasks(dir);
    expect(task?.instruction).toBe('Print {{x}}');
  });

  it("keeps a pytest-output reader per row, which adds its report flag to the row's environment", async () => {
    const yaml = TASK_YAML.replace('verifier:\n', 'verifier:\n  reward: pytest-output\n');
    const [first, second] = await loadTasks(await datasetTask(ROWS, yaml));
    const reward = (task: typeof first) => {
      if (task?.verifier?.reward.kind !== 'reader') throw new Error('expected a reader');
      return task.verifier.reward;
    };
    expect(reward(first).name).toBe('pytest-output');
    expect(reward(first).env?.(first!.verifier!.env)).toMatchObject({
      PADDOCK_FIELD_A: '1',
      PYTEST_ADDOPTS: expect.stringContaining('--junitxml='),
    });
    // Each row's task has its own copy of the data, and the same functions.
    expect(reward(first).dirs).not.toBe(reward(second).dirs);
    expect(reward(first).read).toBe(reward(second).read);
  });

  it('names the variable of a field with other characters in uppercase with underscores', () => {
    expect(fieldEnvName('expected-answer.v2')).toBe('PADDOCK_FIELD_EXPECTED_ANSWER_V2');
  });
});

describe('bad dataset rows', () => {
  async function rowProblems(rows: string, taskYaml = TASK_YAML) {
    const dir = await datasetTask(rows, taskYaml);
    const { tasks, problems } = await validateTasks(dir);
    expect(tasks).toEqual([]);
    return { file: path.join(dir, 'rows.jsonl'), problems };
  }

  it('names rows.jsonl and the line of invalid JSON', async () => {
    const { file, problems } = await rowProblems(`${JSON.stringify({ a: 1, b: 2, sum: 3 })}\n{"a": 1,\n`);
    expect(problems).toEqual([
      { file, line: 2, path: '', message: expect.stringMatching(/^invalid JSON( at column \d+)?: /) },
    ]);
  });

  it('names the line and the field a template needs that the row lacks', async () => {
    const { file, problems } = await rowProblems(
      `${JSON.stringify({ a: 1, b: 2, sum: 3 })}\n${JSON.stringify({ a: 1, sum: 3 })}\n`,
    );
    expect(problems).toEqual([
      { file, line: 2, path: 'b', message: 'missing field: {{b}} is used by instruction' },
    ]);
  });

  it('lists every place that uses a missing field', async () => {
    const { problems } = await rowProblems(JSON.stringify({ b: 2, sum: 3 }));
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'a',
        message: 'missing field: {{a}} is used by instruction, verifier.command, solution.env.HINT',
      }),
    ]);
  });

  it('refuses a row that is not an object', async () => {
    const { problems } = await rowProblems('[1, 2]\n');
    expect(problems).toEqual([
      expect.objectContaining({ line: 1, message: 'expected a JSON object, got a list' }),
    ]);
  });

  it('refuses duplicate row ids', async () => {
    const row = JSON.stringify({ id: 'same', a: 1, b: 2, sum: 3 });
    const { problems } = await rowProblems(`${row}\n${row}\n`);
    expect(problems).toEqual([
      expect.objectContaining({ line: 2, path: 'id', message: 'duplicate row id "same" (first on line 1)' }),
    ]);
  });

  it('refuses a row id that cannot be part of a task id', async () => {
    const { problems } = await rowProblems(JSON.stringify({ id: 'a b', a: 1, b: 2, sum: 3 }));
    expect(problems).toEqual([
      expect.objectContaining({ path: 'id', message: expect.stringContaining('got "a b"') }),
    ]);
  });

  it('refuses a row without the id_field it names', async () => {
    const { problems } = await rowProblems(
      JSON.stringify({ a: 1, b: 2, sum: 3 }),
      TASK_YAML.replace('{ file: rows.jsonl }', '{ file: rows.jsonl, id_field: key }'),
    );
    expect(problems).toEqual([expect.objectContaining({ line: 1, path: 'key' })]);
  });

  it('refuses an empty dataset', async () => {
    const { file, problems } = await rowProblems('\n\n');
    expect(problems).toEqual([{ file, path: '', message: 'the dataset has no rows' }]);
  });
});
