/**
 * The framing protocol between the host and the long-lived shell inside a container.
 * Pure code (no engine): the shell script written to the shell, the demultiplexer of the
 * engine's attach stream, and the scanner that finds markers in stdout and stderr.
 *
 * How a command runs (see `shellPrelude` for the script):
 * 1. The shell keeps one worker subshell forked ahead, in a process group of its own
 *    (`set -m`), waiting for the next command line; the fork is paid between commands,
 *    not while the host waits.
 * 2. The host writes one line, `<cwd> <stdin> <command> <exports>` (each quoted, without
 *    a raw newline), followed by the stdin bytes when there are any (the worker's
 *    `head -c` reads exactly those; bash reads a line one byte at a time from a pipe, so
 *    the two never overlap; for other shells the host puts a file in place through the
 *    engine and passes its path).
 * 3. The worker reads the line, points its stdin at /dev/null or that file, prints a
 *    begin marker carrying its pid on stdout and on stderr, applies cwd and env and
 *    `eval`s the command, writing straight to the shell's stdout and stderr (kept apart
 *    by the engine's stream multiplexing).
 * 4. When the worker exits, the shell prints an end marker carrying the worker's pid on
 *    both streams, the exit status on stdout's, and forks the next worker.
 * Every marker is `\x1e` + the shell's random nonce + a kind letter + a value + `\n`.
 * A stream's bytes belong to the command from its begin marker to the end marker of the
 * same pid; bytes outside (a stray background process of an earlier command) are dropped,
 * and so is the end marker of a worker that died before it took a line (the host never
 * saw it begin). The host kills a command by killing its process group from a second
 * root shell.
 */

/** The byte every marker starts with (ASCII record separator). */
export const MARKER_BYTE = 0x1e;

/** Quotes `value` for a POSIX shell (single quotes; NUL bytes, which no shell can hold, are dropped). */
export function shellQuote(value: string): string {
  return `'${value.replace(/\0/g, '').replace(/'/g, `'\\''`)}'`;
}

/**
 * Quotes `value` like `shellQuote`, but on one line: a newline becomes `$__pd_nl` (which
 * the prelude sets to a newline), so that `read` takes the whole command line at once.
 */
export function lineQuote(value: string): string {
  return shellQuote(value).replace(/\n/g, `'"$__pd_nl"'`);
}

/** Environment variable names a shell can `export`. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The script written once when a shell starts. It prints the ready marker
 * `\x1e<nonce>r<uid> <gid> <shell>\n` and then serves command lines for good (see the
 * module comment). Portable to bash and dash; uses `$BASHPID` when present and
 * `/proc/self/stat` otherwise. Everything runs inside one function called by the last
 * line, so that a shell that reads its input in blocks (dash) has read all of the script,
 * and nothing more, before the ready marker tells the host to write commands.
 */
export function shellPrelude(nonce: string): string {
  return [
    // Job control: each job (here a worker subshell) gets its own process group, so that
    // a timeout can kill the whole group.
    'set -m 2>/dev/null',
    'unset PROMPT_COMMAND 2>/dev/null',
    'PS1= PS2= PS4=+',
    // Outside the function, so that its text (`declare -f`) holds no secret.
    `__pd_s=${shellQuote(nonce)}`,
    "__pd_nl='",
    "'",
    '__pd_main() {',
    // fd 4 carries the command lines; every worker closes it before running its command.
    '  exec 4<&0',
    `  printf '\\036%sr%s %s %s\\n' "$__pd_s" "$(id -u 2>/dev/null || echo -1)" "$(id -g 2>/dev/null || echo -1)" "\${BASH_VERSION:+bash}"`,
    '  while :; do',
    '    __pd_w=',
    '    (',
    '      exec 2>&3 3>&-',
    // End of input: the host closed the shell, so it goes too.
    '      IFS= read -r __pd_l <&4 || { kill -9 $$ 2>/dev/null; exit 0; }',
    '      eval "set -- $__pd_l"',
    '      case "$2" in',
    '        -1|0) __pd_i=/dev/null ;;',
    '        /*) __pd_i=$2 ;;',
    '        *) __pd_i="${TMPDIR:-/tmp}/.paddock-stdin.$$"; head -c "$2" <&4 > "$__pd_i" ;;',
    '      esac',
    '      exec < "$__pd_i" 4<&-',
    '      [ "$__pd_i" = /dev/null ] || rm -f "$__pd_i"',
    '      __pd_p=${BASHPID:-}',
    '      [ -n "$__pd_p" ] || read -r __pd_p __pd_x < /proc/self/stat',
    `      printf '\\036%sb%s\\n' "$__pd_s" "$__pd_p"`,
    `      printf '\\036%sb%s\\n' "$__pd_s" "$__pd_p" >&2`,
    '      cd -- "$1" || exit 1',
    '      __pd_c=$4$3',
    '      unset __pd_s __pd_nl __pd_w __pd_r __pd_l __pd_i __pd_p __pd_x; set --',
    // Shells without job control for their jobs (dash) get a session of their own from setsid.
    '      if [ -z "${BASH_VERSION:-}" ] && command -v setsid >/dev/null 2>&1; then exec setsid sh -c "$__pd_c"; fi',
    '      eval "unset __pd_c; $__pd_c"',
    '    ) &',
    '    __pd_w=$!',
    '    wait "$__pd_w"',
    '    __pd_r=$?',
    `    printf '\\036%se%s %s\\n' "$__pd_s" "$__pd_w" "$__pd_r"`,
    `    printf '\\036%se%s\\n' "$__pd_s" "$__pd_w" >&3`,
    // The shell's own stderr is /dev/null (no "Killed" notices in a command's stderr); a
    // worker takes the real stderr back from fd 3.
    '  done 3>&2 2>/dev/null',
    '}',
    '__pd_main',
    '',
  ].join('\n');
}

/** What one command line tells the shell. */
export interface CommandLine {
  cwd: string;
  command: string;
  env?: Record<string, string>;
  /**
   * The command's stdin: -1 (or 0) for /dev/null; a byte count N when N bytes follow the
   * line (bash only: it never reads ahead of a line, dash does); or the absolute path of
   * a file already in the container (removed once the command has opened it).
   */
  stdin: number | string;
}

/**
 * The line written to the shell for one command (stdin bytes, if any, go right after
 * it). @throws RangeError when an env name cannot be exported by a shell.
 */
export function commandLine(line: CommandLine): string {
  let exports = '';
  for (const [name, value] of Object.entries(line.env ?? {})) {
    if (!ENV_NAME.test(name))
      throw new RangeError(`invalid environment variable name: ${JSON.stringify(name)}`);
    exports += `export ${name}=${shellQuote(value)}; `;
  }
  const stdin = typeof line.stdin === 'number' ? String(line.stdin) : lineQuote(line.stdin);
  return `${lineQuote(line.cwd)} ${stdin} ${lineQuote(line.command)} ${lineQuote(exports)}\n`;
}

/** The parts of an end marker on stdout (`e<pid> <status>`); undefined when malformed. */
export function parseEnd(value: string): { pid: number; exitCode: number } | undefined {
  const match = /^(\d+) (\d+)$/.exec(value);
  if (!match) return undefined;
  return { pid: Number(match[1]), exitCode: Number(match[2]) };
}

/**
 * Incremental demultiplexer of the engine's attach stream (non-TTY): frames of an 8-byte
 * header (stream type, 3 zero bytes, big-endian payload length) and the payload.
 * Partial headers and payloads across chunks are handled; payload slices are passed on
 * without copying.
 */
export class AttachStreamDemuxer {
  private header = Buffer.alloc(8);
  private headerFill = 0;
  private remaining = 0;
  private stream = 1;

  constructor(private readonly onFrame: (stream: 1 | 2, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining === 0) {
        const take = Math.min(8 - this.headerFill, chunk.length - offset);
        chunk.copy(this.header, this.headerFill, offset, offset + take);
        this.headerFill += take;
        offset += take;
        if (this.headerFill < 8) return;
        this.headerFill = 0;
        this.stream = this.header[0] === 2 ? 2 : 1;
        this.remaining = this.header.readUInt32BE(4);
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - offset);
      this.remaining -= take;
      this.onFrame(this.stream as 1 | 2, chunk.subarray(offset, offset + take));
      offset += take;
    }
  }
}

/** A marker found in a stream: its kind letter and the text after it up to the newline. */
export interface Marker {
  kind: string;
  value: string;
}

/** Longest marker tail (kind + digits/words) accepted before a newline. */
const MAX_MARKER_TAIL = 64;

/**
 * Scans one output stream for `\x1e<nonce><kind><value>\n` markers of the nonce it was
 * told to expect. Bytes between a `b` (begin) and an `e` (end) marker go to `onData`;
 * other bytes are dropped. Markers split across chunks are found; only the few bytes
 * that might start a marker are held back, so memory stays bounded however much flows.
 */
export class MarkerScanner {
  private prefix: Buffer | undefined;
  private carry: Buffer | undefined;
  private inBody = false;

  constructor(
    private readonly onData: (bytes: Buffer) => void,
    private readonly onMarker: (marker: Marker) => void,
  ) {}

  /** Starts looking for markers of `nonce`; output before its `b` marker is dropped. */
  expect(nonce: string): void {
    this.prefix = Buffer.from(`\x1e${nonce}`, 'latin1');
    this.carry = undefined;
    this.inBody = false;
  }

  /** Stops looking: everything until the next `expect` is dropped. */
  reset(): void {
    this.prefix = undefined;
    this.carry = undefined;
    this.inBody = false;
  }

  /** True between the begin and the end marker. */
  get receiving(): boolean {
    return this.inBody;
  }

  push(chunk: Buffer): void {
    if (!this.prefix) return;
    let buf = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = undefined;
    while (buf.length > 0 && this.prefix) {
      const at = buf.indexOf(this.prefix);
      if (at < 0) {
        // Hold back a tail that could be the start of a marker split across chunks.
        const keep = this.partialPrefixLength(buf);
        this.emit(buf.subarray(0, buf.length - keep));
        if (keep > 0) this.carry = Buffer.from(buf.subarray(buf.length - keep));
        return;
      }
      this.emit(buf.subarray(0, at));
      const tailStart = at + this.prefix.length;
      const newline = buf.indexOf(0x0a, tailStart);
      if (newline < 0) {
        if (buf.length - tailStart > MAX_MARKER_TAIL) {
          // Not a marker after all (no newline soon after): treat the prefix as data.
          this.emit(buf.subarray(at, tailStart));
          buf = buf.subarray(tailStart);
          continue;
        }
        this.carry = Buffer.from(buf.subarray(at));
        return;
      }
      const tail = buf.toString('latin1', tailStart, newline);
      buf = buf.subarray(newline + 1);
      const kind = tail.charAt(0);
      if (kind === 'b') this.inBody = true;
      if (kind === 'e') this.inBody = false;
      this.onMarker({ kind, value: tail.slice(1) });
    }
  }

  private emit(bytes: Buffer): void {
    if (this.inBody && bytes.length > 0) this.onData(bytes);
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of the marker prefix. */
  private partialPrefixLength(buf: Buffer): number {
    const prefix = this.prefix;
    if (!prefix) return 0;
    const from = Math.max(0, buf.length - prefix.length + 1);
    let at = buf.indexOf(MARKER_BYTE, from);
    while (at >= 0) {
      const len = buf.length - at;
      if (buf.compare(prefix, 0, len, at, buf.length) === 0) return len;
      at = buf.indexOf(MARKER_BYTE, at + 1);
    }
    return 0;
  }
}

/**
 * Keeps the first `capBytes` bytes pushed into it and counts the rest, so that a
 * command flooding its output costs bounded memory.
 */
export class CappedBuffer {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  /** All bytes pushed, kept or not. */
  total = 0;

  constructor(readonly capBytes: number) {}

  push(bytes: Buffer): void {
    this.total += bytes.length;
    const room = this.capBytes - this.kept;
    if (room <= 0) return;
    const piece = bytes.length <= room ? bytes : bytes.subarray(0, room);
    // Copy: the source chunk may be a slice of a large socket buffer we do not want to pin.
    this.chunks.push(Buffer.from(piece));
    this.kept += piece.length;
  }

  /** True when bytes were dropped. */
  get truncated(): boolean {
    return this.total > this.capBytes;
  }

  /** The kept bytes as UTF-8 text; a multi-byte character cut at the cap is dropped. */
  text(): string {
    const bytes = Buffer.concat(this.chunks, this.kept);
    const end = this.truncated ? utf8Boundary(bytes) : bytes.length;
    return bytes.toString('utf8', 0, end);
  }
}

/** The largest length ≤ bytes.length that does not cut a UTF-8 sequence. */
export function utf8Boundary(bytes: Uint8Array): number {
  const end = bytes.length;
  // Step back over at most 3 continuation bytes to the lead byte of the last character.
  for (let i = 1; i <= 4 && end - i >= 0; i++) {
    const byte = bytes[end - i] ?? 0;
    if ((byte & 0xc0) === 0x80) continue; // continuation byte
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return need > i ? end - i : end;
  }
  return end;
}
