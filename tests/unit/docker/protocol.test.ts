/**
 * The shell protocol's pure parts: attach-stream demultiplexing, marker scanning across
 * chunk boundaries, output capping and quoting.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  AttachStreamDemuxer,
  CappedBuffer,
  MarkerScanner,
  commandLine,
  shellPrelude,
  shellQuote,
  utf8Boundary,
} from '../../../sandboxes/docker/protocol.ts';
import type { Marker } from '../../../sandboxes/docker/protocol.ts';
import { parseSnapshot, snapshotScript } from '../../../sandboxes/docker/shell.ts';

function frame(stream: 1 | 2, payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

/** Feeds `data` to `push` in pieces of `size` bytes. */
function feed(push: (chunk: Buffer) => void, data: Buffer, size: number): void {
  for (let i = 0; i < data.length; i += size) push(data.subarray(i, i + size));
}

function scanner(): { scan: MarkerScanner; data: () => string; markers: Marker[] } {
  const chunks: Buffer[] = [];
  const markers: Marker[] = [];
  const scan = new MarkerScanner(
    (bytes) => chunks.push(Buffer.from(bytes)),
    (marker) => markers.push(marker),
  );
  return { scan, data: () => Buffer.concat(chunks).toString('latin1'), markers };
}

const NONCE = '0123456789abcdef0123456789abcdef';

describe('AttachStreamDemuxer', () => {
  it('splits frames into stdout and stderr payloads, whatever the chunk sizes', () => {
    const wire = Buffer.concat([
      frame(1, 'out-1 '),
      frame(2, 'err-1'),
      frame(1, 'out-2'),
      frame(2, Buffer.alloc(0)),
    ]);
    for (const size of [1, 3, 8, 9, 1000]) {
      const out: string[] = [];
      const err: string[] = [];
      const demux = new AttachStreamDemuxer((stream, payload) =>
        (stream === 1 ? out : err).push(payload.toString()),
      );
      feed((chunk) => demux.push(chunk), wire, size);
      expect(out.join('')).toBe('out-1 out-2');
      expect(err.join('')).toBe('err-1');
    }
  });
});

describe('MarkerScanner', () => {
  it('passes on only the bytes between the begin and end markers of the expected nonce', () => {
    const { scan, data, markers } = scanner();
    scan.expect(NONCE);
    scan.push(Buffer.from(`stray before\x1e${NONCE}b42\nhello\nworld\x1e${NONCE}e0\nstray after`));
    expect(data()).toBe('hello\nworld');
    expect(markers).toEqual([
      { kind: 'b', value: '42' },
      { kind: 'e', value: '0' },
    ]);
  });

  it('finds markers split across chunks at every position', () => {
    const wire = Buffer.from(`junk\x1e${NONCE}b7\nout\x1eput\x1e${NONCE}e3\n`);
    for (let size = 1; size <= wire.length; size++) {
      const { scan, data, markers } = scanner();
      scan.expect(NONCE);
      feed((chunk) => scan.push(chunk), wire, size);
      expect(data()).toBe('out\x1eput');
      expect(markers.map((m) => `${m.kind}${m.value}`)).toEqual(['b7', 'e3']);
    }
  });

  it('ignores markers of another nonce (a forged or stale one is data)', () => {
    const { scan, data, markers } = scanner();
    scan.expect(NONCE);
    scan.push(Buffer.from(`\x1e${NONCE}b1\n\x1effffffffffffffffffffffffffffffffe9\nreal\x1e${NONCE}e0\n`));
    expect(data()).toBe('\x1effffffffffffffffffffffffffffffffe9\nreal');
    expect(markers).toHaveLength(2);
  });

  it('treats the prefix as data when no newline follows soon', () => {
    const { scan, data, markers } = scanner();
    scan.expect(NONCE);
    scan.push(Buffer.from(`\x1e${NONCE}b1\n`));
    scan.push(Buffer.from(`\x1e${NONCE}${'x'.repeat(100)}`));
    scan.push(Buffer.from(`\x1e${NONCE}e0\n`));
    expect(data()).toBe(`\x1e${NONCE}${'x'.repeat(100)}`);
    expect(markers.map((m) => m.kind)).toEqual(['b', 'e']);
  });

  it('drops everything after reset until the next expect', () => {
    const { scan, data } = scanner();
    scan.expect(NONCE);
    scan.push(Buffer.from(`\x1e${NONCE}b1\nkept`));
    scan.reset();
    scan.push(Buffer.from(`dropped\x1e${NONCE}e0\n`));
    expect(data()).toBe('kept');
  });

  it('holds back at most a marker-sized tail, however much data flows', () => {
    let passed = 0;
    const counting = new MarkerScanner(
      (bytes) => (passed += bytes.length),
      () => undefined,
    );
    counting.expect(NONCE);
    counting.push(Buffer.from(`\x1e${NONCE}b1\n`));
    const block = Buffer.alloc(65_536, 0x61);
    block[block.length - 1] = 0x1e; // a possible marker start at the very end
    for (let i = 0; i < 100; i++) counting.push(block);
    expect(passed).toBeGreaterThan(100 * 65_536 - 64);
    expect(counting.receiving).toBe(true);
  });
});

describe('CappedBuffer', () => {
  it('keeps the first capBytes, counts the rest and marks truncation', () => {
    const buffer = new CappedBuffer(10);
    buffer.push(Buffer.from('hello '));
    buffer.push(Buffer.from('world, and more'));
    expect(buffer.text()).toBe('hello worl');
    expect(buffer.total).toBe(21);
    expect(buffer.truncated).toBe(true);
  });

  it('is not truncated at exactly capBytes', () => {
    const buffer = new CappedBuffer(5);
    buffer.push(Buffer.from('12345'));
    expect(buffer.truncated).toBe(false);
    expect(buffer.text()).toBe('12345');
  });

  it('drops a multi-byte character cut by the cap', () => {
    const buffer = new CappedBuffer(4);
    buffer.push(Buffer.from('ab€')); // € is 3 bytes
    expect(buffer.text()).toBe('ab');
  });
});

describe('utf8Boundary', () => {
  it('keeps complete characters and steps back over a cut one', () => {
    expect(utf8Boundary(Buffer.from('abc'))).toBe(3);
    expect(utf8Boundary(Buffer.from('aé'))).toBe(3);
    expect(utf8Boundary(Buffer.from('aé').subarray(0, 2))).toBe(1);
    expect(utf8Boundary(Buffer.from('a😀').subarray(0, 4))).toBe(1);
    expect(utf8Boundary(Buffer.from('a😀'))).toBe(5);
  });
});

describe('shell text', () => {
  it('quotes any string so that the shell reads it back unchanged', () => {
    for (const value of ["it's", 'a "b" $HOME `x` \\n', 'line1\nline2', '', "''''"]) {
      const echoed = execFileSync('sh', ['-c', `printf %s ${shellQuote(value)}`]).toString();
      expect(echoed).toBe(value);
    }
  });

  it('builds one command line with quoted cwd, command and exports', () => {
    const line = commandLine({ nonce: 'N', cwd: '/a b', command: "echo 'x'", env: { K: 'v w' }, stdin: 5 });
    expect(line).toBe(`__pd N '/a b' 5 'echo '\\''x'\\''' 'export K='\\''v w'\\''; '\n`);
  });

  it('refuses an environment name a shell cannot export', () => {
    expect(() =>
      commandLine({ nonce: 'N', cwd: '/', command: 'true', env: { 'A-B': '1' }, stdin: -1 }),
    ).toThrow(RangeError);
  });

  it('runs a command through the prelude in a local bash with both markers and the exit code', () => {
    const script =
      shellPrelude('R') +
      commandLine({ nonce: NONCE, cwd: '/', command: 'echo out; echo err >&2; exit 7', stdin: -1 });
    const stdout = execFileSync('bash', ['-c', `${script}`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    }).toString('latin1');
    const { scan, data, markers } = scanner();
    scan.expect(NONCE);
    scan.push(Buffer.from(stdout, 'latin1'));
    expect(data()).toBe('out\n');
    expect(markers.at(-1)).toEqual({ kind: 'e', value: '7' });
  });
});

describe('pids snapshot', () => {
  it('counts processes per process group and reads the pids limit', () => {
    const snapshot = parseSnapshot(
      ['L 60 64', 'P S 0 1 0', 'P R 1 7 7', 'P R 7 7 7', 'P S 1 9 9', 'garbage', ''].join('\n'),
    );
    expect(snapshot).toEqual({
      current: 60,
      max: 64,
      groups: new Map([
        [1, 1],
        [7, 2],
        [9, 1],
      ]),
    });
  });

  it('has no limit when the cgroup says max or cannot be read', () => {
    expect(parseSnapshot('L 5 max\n').max).toBeUndefined();
    expect(parseSnapshot('L  \n').max).toBeUndefined();
  });

  it('lists this machine’s processes with shell builtins and ends with the token', () => {
    const output = execFileSync('sh', ['-c', snapshotScript('T1')]).toString();
    expect(output.endsWith('E T1\n')).toBe(true);
    expect(parseSnapshot(output).groups.size).toBeGreaterThan(0);
  });
});
