import { describe, expect, it } from 'vitest';
import { backoffDelayMs, isRetryableStatus, parseRetryAfter } from '../../../agents/http.ts';

describe('parseRetryAfter', () => {
  it('reads seconds', () => {
    expect(parseRetryAfter(new Headers({ 'retry-after': '2' }))).toBe(2000);
    expect(parseRetryAfter(new Headers({ 'retry-after': '0.5' }))).toBe(500);
  });

  it('reads an HTTP date relative to now', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:03 GMT' }), now)).toBe(3000);
    expect(parseRetryAfter(new Headers({ 'retry-after': 'Tue, 31 Dec 2024 23:00:00 GMT' }), now)).toBe(0);
  });

  it('prefers retry-after-ms', () => {
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': '150', 'retry-after': '9' }))).toBe(150);
  });

  it('ignores absent and unreadable values', () => {
    expect(parseRetryAfter(new Headers())).toBeUndefined();
    expect(parseRetryAfter(new Headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(parseRetryAfter(new Headers({ 'retry-after': '-3' }))).toBeUndefined();
  });
});

describe('backoffDelayMs', () => {
  const noJitter = { random: () => 0 };

  it('doubles from initialDelayMs up to maxDelayMs', () => {
    const retry = { ...noJitter, initialDelayMs: 100, maxDelayMs: 500 };
    expect([1, 2, 3, 4, 5].map((attempt) => backoffDelayMs(attempt, undefined, retry))).toEqual([
      100, 200, 400, 500, 500,
    ]);
  });

  it('takes off up to a quarter as jitter', () => {
    expect(backoffDelayMs(1, undefined, { initialDelayMs: 1000, random: () => 0.999 })).toBeCloseTo(
      750.25,
      5,
    );
  });

  it('waits what retry-after asks, unless it is longer than maxRetryAfterMs', () => {
    expect(backoffDelayMs(3, 1234, noJitter)).toBe(1234);
    expect(backoffDelayMs(1, 3_600_000, { ...noJitter, initialDelayMs: 100 })).toBe(100);
  });
});

describe('isRetryableStatus', () => {
  it.each([408, 409, 429, 500, 502, 503, 529])('retries %i', (status) => {
    expect(isRetryableStatus(status)).toBe(true);
  });
  it.each([400, 401, 403, 404, 422])('does not retry %i', (status) => {
    expect(isRetryableStatus(status)).toBe(false);
  });
});
