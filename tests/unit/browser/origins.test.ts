import { describe, expect, it } from 'vitest';
import { OriginPolicy, originOf, resolveGotoTarget } from '../../../sandboxes/browser/index.ts';

const policy = new OriginPolicy(['http://127.0.0.1:4000', 'https://docs.example.com/any/path']);

describe('OriginPolicy', () => {
  it('allows its origins, and local schemes that reach no server', () => {
    expect(policy.allows('http://127.0.0.1:4000/cart?x=1')).toBe(true);
    expect(policy.allows('https://docs.example.com/')).toBe(true);
    expect(policy.allows('data:text/html,hi')).toBe(true);
    expect(policy.allows('about:blank')).toBe(true);
    expect(policy.allows('blob:http://127.0.0.1:4000/1234')).toBe(true);
  });

  it('refuses other hosts, other ports and schemes of the same host, and file: URLs', () => {
    expect(policy.allows('http://127.0.0.1:4001/')).toBe(false);
    expect(policy.allows('https://127.0.0.1:4000/')).toBe(false);
    expect(policy.allows('http://localhost:4000/')).toBe(false);
    expect(policy.allows('http://example.com/')).toBe(false);
    expect(policy.allows('file:///etc/passwd')).toBe(false);
    expect(policy.allows('not a url')).toBe(false);
  });

  it('lists its origins', () => {
    expect(policy.list()).toEqual(['http://127.0.0.1:4000', 'https://docs.example.com']);
    expect(originOf('javascript:alert(1)')).toBeUndefined();
  });
});

describe('resolveGotoTarget', () => {
  const here = 'http://127.0.0.1:4000/shop/index.html';

  it('resolves paths against the current page', () => {
    expect(resolveGotoTarget('/cart.html', here, policy)).toEqual({
      ok: true,
      url: 'http://127.0.0.1:4000/cart.html',
    });
    expect(resolveGotoTarget('item.html?id=3', here, policy)).toEqual({
      ok: true,
      url: 'http://127.0.0.1:4000/shop/item.html?id=3',
    });
  });

  it('refuses javascript:, data: and file: URLs and other origins, saying why', () => {
    const js = resolveGotoTarget('javascript:window.score = () => 1', here, policy);
    expect(js).toEqual({ ok: false, reason: 'only http(s) URLs can be opened, not javascript: URLs' });
    expect(resolveGotoTarget('data:text/html,<script>1</script>', here, policy).ok).toBe(false);
    expect(resolveGotoTarget('file:///etc/passwd', here, policy).ok).toBe(false);
    const other = resolveGotoTarget('http://127.0.0.1:4001/', here, policy);
    expect(other).toEqual({
      ok: false,
      reason:
        'http://127.0.0.1:4001 is not an allowed origin for this task (allowed: http://127.0.0.1:4000, https://docs.example.com)',
    });
  });

  it('refuses a path when the current page has no http origin', () => {
    expect(resolveGotoTarget('/cart.html', 'about:blank', policy)).toMatchObject({ ok: false });
  });
});
