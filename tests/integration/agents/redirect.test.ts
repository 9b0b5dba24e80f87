/**
 * A model server behind an address that redirects: `postJson` (agents/http.ts) refuses
 * redirects on its first try (so that fetch need not copy the body of every request),
 * then asks again with redirects followed, the same body sent, and keeps following for
 * that URL. Against a real loopback HTTP server.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../../../agents/http.ts';

interface Seen {
  method: string;
  url: string;
  body: string;
}

describe('postJson and a server that redirects', () => {
  const seen: Seen[] = [];
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        seen.push({ method: request.method ?? '', url: request.url ?? '', body });
        if (request.url?.startsWith('/old/')) {
          const status = request.url.endsWith('308') ? 308 : 307;
          response.writeHead(status, { location: '/new/chat' }).end();
          return;
        }
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ echoed: JSON.parse(body) }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address() as { port: number };
    base = `http://127.0.0.1:${address.port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const post = (path: string, n: number) =>
    postJson({ url: `${base}${path}`, headers: {}, body: { n }, timeoutMs: 5_000, label: 'redirect test' });

  it.each(['/old/307', '/old/308'])(
    'follows a %s with the same POST body, and keeps following that URL',
    async (path) => {
      seen.length = 0;
      const first = await post(path, 1);
      expect(first.json).toEqual({ echoed: { n: 1 } });
      expect(first.attempts).toBe(1);
      // Refused once, then followed: the body reached the new address intact.
      expect(seen.map((s) => `${s.method} ${s.url} ${s.body}`)).toEqual([
        `POST ${path} {"n":1}`,
        `POST ${path} {"n":1}`,
        'POST /new/chat {"n":1}',
      ]);
      seen.length = 0;
      expect((await post(path, 2)).json).toEqual({ echoed: { n: 2 } });
      expect(seen.map((s) => s.url)).toEqual([path, '/new/chat']);
    },
  );

  it('posts once to a server that answers where it is asked', async () => {
    seen.length = 0;
    expect((await post('/new/chat', 3)).json).toEqual({ echoed: { n: 3 } });
    expect(seen.map((s) => s.url)).toEqual(['/new/chat']);
  });
});
