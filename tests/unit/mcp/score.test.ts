import { describe, expect, it } from 'vitest';
import {
  checkExpectations,
  JsonPathError,
  queryJsonPath,
  type McpCallResult,
} from '../../../sandboxes/mcp/index.ts';

const graph = {
  entities: [
    { name: 'Ada', entityType: 'engineer', observations: ['speaks Portuguese'] },
    { name: 'Grace', entityType: 'manager', observations: [] },
  ],
  relations: [{ from: 'Ada', to: 'Grace', relationType: 'reports_to' }],
};

describe('queryJsonPath', () => {
  it('selects members, elements and wildcards', () => {
    expect(queryJsonPath(graph, '$.entities[0].name')).toEqual(['Ada']);
    expect(queryJsonPath(graph, '$.entities[-1].name')).toEqual(['Grace']);
    expect(queryJsonPath(graph, "$['entities'][*].name")).toEqual(['Ada', 'Grace']);
    expect(queryJsonPath(graph, '$.relations.*.to')).toEqual(['Grace']);
    expect(queryJsonPath(graph, '$')).toEqual([graph]);
  });

  it('descends recursively', () => {
    expect(queryJsonPath(graph, '$..name')).toEqual(['Ada', 'Grace']);
  });

  it('filters elements', () => {
    expect(queryJsonPath(graph, "$.entities[?(@.name == 'Ada')].entityType")).toEqual(['engineer']);
    expect(queryJsonPath(graph, "$.entities[?(@.name != 'Ada')].name")).toEqual(['Grace']);
    expect(queryJsonPath([{ n: 1 }, { n: 2 }], '$[?(@.n == 2)]')).toEqual([{ n: 2 }]);
    expect(queryJsonPath([{ ok: true }, { ok: false }, {}], '$[?(@.ok)]')).toEqual([{ ok: true }]);
  });

  it('selects nothing where nothing is', () => {
    expect(queryJsonPath(graph, '$.nope.deeper')).toEqual([]);
    expect(queryJsonPath('text', '$.a')).toEqual([]);
  });

  it('refuses what it does not support', () => {
    expect(() => queryJsonPath(graph, 'entities')).toThrow(JsonPathError);
    expect(() => queryJsonPath(graph, '$.a[1:2]')).toThrow(JsonPathError);
    expect(() => queryJsonPath(graph, '$.a[')).toThrow(JsonPathError);
  });
});

function result(value: unknown, isError = false): McpCallResult {
  return { isError, text: JSON.stringify(value), value, textValue: value };
}

describe('checkExpectations', () => {
  it('passes when every expectation holds', () => {
    const report = checkExpectations(result(graph), [
      { jsonpath: '$.entities[*].name', includes: ['Ada'], length: 2 },
      { jsonpath: '$.entities[0].name', equals: 'Ada' },
      { jsonpath: '$.relations[*]', includes: [{ relationType: 'reports_to', to: 'Grace', from: 'Ada' }] },
      {
        jsonpath: "$.entities[?(@.name == 'Ada')].observations[*]",
        contains: 'Portuguese',
        excludes: ['speaks Latin'],
      },
      { matches: 'reports_to' },
      { jsonpath: '$.nothing', exists: false },
    ]);
    expect(report).toEqual({ passed: 6, total: 6, failures: [] });
  });

  it('says which expectation failed and why', () => {
    const report = checkExpectations(result(graph), [
      { jsonpath: '$.entities[0].name', equals: 'Grace' },
      { jsonpath: '$.missing', contains: 'x' },
      { jsonpath: '$.entities[*].name', excludes: ['Ada'] },
    ]);
    expect(report.passed).toBe(0);
    expect(report.failures).toEqual([
      '$.entities[0].name is "Ada", expected "Grace"',
      '$.missing selected nothing',
      '$.entities[*].name includes "Ada"',
    ]);
  });

  it('fails a failed call unless the expectation wants it to fail', () => {
    expect(checkExpectations(result('boom', true), [{ contains: 'boom' }]).passed).toBe(0);
    expect(checkExpectations(result('boom', true), [{ isError: true, contains: 'boom' }]).passed).toBe(1);
  });

  it('checks the text value with from: text', () => {
    const both: McpCallResult = {
      isError: false,
      text: '[1,2]',
      value: { wrapped: '[1,2]' },
      textValue: [1, 2],
    };
    expect(checkExpectations(both, [{ jsonpath: '$[*]', length: 2 }], 'text').passed).toBe(1);
    expect(checkExpectations(both, [{ jsonpath: '$[*]', length: 2 }]).passed).toBe(0);
  });
});
