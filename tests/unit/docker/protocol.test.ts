/**
 * The shell protocol's pure parts: attach-stream demultiplexing, marker scanning across
 * chunk boundaries, output capping and quoting.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AttachStreamDemuxer,
  CappedBuffer,
  MarkerScanner,
  commandLine,
  parseEnd,
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

  it('builds one command line with quoted cwd, command and exports, with no raw newline', () => {
    const line = commandLine({ cwd: '/a b', command: "echo 'x'\necho y", env: { K: 'v w' }, stdin: 5 });
    expect(line).toBe(`'/a b' 5 'echo '\\''x'\\'''"$__pd_nl"'echo y' 'export K='\\''v w'\\''; '\n`);
    expect(line.indexOf('\n')).toBe(line.length - 1);
  });

  it('refuses an environment name a shell cannot export', () => {
    expect(() => commandLine({ cwd: '/', command: 'true', env: { 'A-B': '1' }, stdin: -1 })).toThrow(
      RangeError,
    );
  });

  it('parses the pid and the exit status of an end marker', () => {
    expect(parseEnd('42 7')).toEqual({ pid: 42, exitCode: 7 });
    expect(parseEnd('42')).toBeUndefined();
    expect(parseEnd('x 1')).toBeUndefined();
  });

  for (const shell of ['bash', 'dash']) {
    it(`runs commands through the prelude in a local ${shell}: output, env, cwd, exit codes, no secret`, async () => {
      const input = path.join(mkdtempSync(path.join(tmpdir(), 'paddock-stdin-')), 'in');
      writeFileSync(input, 'from a file\n');
      const lines =
        commandLine({
          cwd: '/tmp',
          command: 'echo "$K"; pwd; echo err >&2; echo "[$__pd_s]"; exit 7',
          env: { K: 'two\nlines' },
          stdin: -1,
        }) + commandLine({ cwd: '/', command: 'cat; echo done', stdin: input });
      // The shell reads from a pipe, as from the engine's attach stream; command lines
      // follow the ready marker (dash reads its input in blocks); at the end of its input
      // the shell kills itself (the host went away).
      const child = spawn(shell, [], { stdio: ['pipe', 'pipe', 'ignore'] });
      const { scan, data, markers } = scanner();
      scan.expect(NONCE);
      child.stdout.on('data', (chunk: Buffer) => {
        const ready = markers.length === 0;
        scan.push(chunk);
        if (ready && markers.length > 0) child.stdin.end(lines);
      });
      child.stdin.write(shellPrelude(NONCE));
      const [, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
      expect(signal).toBe('SIGKILL');
      expect(existsSync(input)).toBe(false);
      expect(data()).toBe('two\nlines\n/tmp\n[]\nfrom a file\ndone\n');
      expect(markers.map((marker) => marker.kind)).toEqual(['r', 'b', 'e', 'b', 'e']);
      const [first, second] = [markers[1], markers[3]].map((marker) => Number(marker?.value));
      expect(first).not.toBe(second);
      expect(markers[2]?.value).toBe(`${first} 7`);
      expect(markers[4]?.value).toBe(`${second} 0`);
    });
  }
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
