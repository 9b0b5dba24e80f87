/**
 * Which URLs a page may reach. An episode allows its own site's origin plus the task's
 * `allowed_origins`; `data:`, `blob:` and `about:` stay allowed (they reach no server).
 * Everything else — other hosts, other ports of the same host, `file:`, `javascript:` —
 * is refused: navigations by the `goto` tool up front, and every request the page makes
 * by a route on its browser context.
 */

/** Schemes that never leave the browser. */
const LOCAL_SCHEMES = new Set(['data:', 'blob:', 'about:']);

/** The `scheme://host:port` of an http(s) URL, or undefined for anything else. */
export function originOf(url: string): string | undefined {
  if (!URL.canParse(url)) return undefined;
  const parsed = new URL(url);
  return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.origin : undefined;
}

/** The set of origins one episode's page may reach. */
export class OriginPolicy {
  private readonly origins: Set<string>;

  /** @param origins origins (or URLs, whose origin is taken) the page may reach. */
  constructor(origins: Iterable<string>) {
    this.origins = new Set();
    for (const origin of origins) this.add(origin);
  }

  /** Allows one more origin (or the origin of a URL). Ignores what is not http(s). */
  add(originOrUrl: string): void {
    const origin = originOf(originOrUrl);
    if (origin !== undefined) this.origins.add(origin);
  }

  /** The allowed origins, sorted. */
  list(): string[] {
    return [...this.origins].sort();
  }

  /** Whether the page may load `url` (a request, a navigation, a sub-resource). */
  allows(url: string): boolean {
    if (!URL.canParse(url)) return false;
    const parsed = new URL(url);
    if (LOCAL_SCHEMES.has(parsed.protocol)) return true;
    const origin = originOf(url);
    return origin !== undefined && this.origins.has(origin);
  }
}

/** The outcome of checking a URL the agent asked to open. */
export type GotoTarget = { ok: true; url: string } | { ok: false; reason: string };

/**
 * Resolves what the agent gave `goto` (an absolute URL, or a path relative to the current
 * page) and checks it against the policy. Only http(s) URLs on allowed origins pass:
 * `javascript:`, `file:`, `data:` and browser-internal URLs are refused too, so that the
 * agent cannot run script or reach the host through the address bar.
 */
export function resolveGotoTarget(input: string, currentUrl: string, policy: OriginPolicy): GotoTarget {
  const base = originOf(currentUrl) === undefined ? undefined : currentUrl;
  const trimmed = input.trim();
  if (!URL.canParse(trimmed, base)) {
    return {
      ok: false,
      reason: `"${input}" is not a URL${base ? '' : ' (and the current page has no http origin to resolve a path against)'}`,
    };
  }
  const url = new URL(trimmed, base);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, reason: `only http(s) URLs can be opened, not ${url.protocol} URLs` };
  }
  if (!policy.allows(url.href)) {
    const allowed = policy.list();
    return {
      ok: false,
      reason: `${url.origin} is not an allowed origin for this task (allowed: ${allowed.length > 0 ? allowed.join(', ') : 'none'})`,
    };
  }
  return { ok: true, url: url.href };
}
