/**
 * The framing protocol between the host and the long-lived shell inside a container.
 * Pure code (no engine): the shell scripts written to the shell, the demultiplexer of the
 * engine's attach stream, and the scanners that find per-command markers in stdout and
 * stderr.
 *
 * How a command runs (see `shellPrelude` for the script):
 * 1. The host writes one line, `__pd <nonce> <cwd> <stdin> <command> <exports>`,
 *    followed by the stdin bytes when there are any (the shell's `head -c` reads exactly
 *    those into a temporary file; bash reads its own input one byte at a time from a
 *    pipe, so the two never overlap; for other shells the host puts a file in place
 *    through the engine and passes its path).
 * 2. The shell runs a subshell in its own process group (`set -m`) whose stdin is
 *    /dev/null or that file; the subshell prints a begin marker carrying its pid on
 *    stdout and on stderr, applies cwd and env and `eval`s the command, writing straight to the shell's stdout and stderr (kept apart by the
 *    engine's stream multiplexing).
 * 3. When it ends, the shell prints an end marker on both streams, the exit status
 *    on stdout's. Every marker is `\x1e` + a random per-command nonce + a kind letter
 *    + digits + `\n`; bytes outside a command's begin/end pair (a stray background
 *    process of an earlier command) are dropped.
 * The host kills a command by killing its process group from a second root shell.
 */

/** The byte every marker starts with (ASCII record separator). */
export const MARKER_BYTE = 0x1e;

/** Quotes `value` for a POSIX shell (single quotes; NUL bytes, which no shell can hold, are dropped). */
export function shellQuote(value: string): string {
  return `'${value.replace(/\0/g, '').replace(/'/g, `'\\''`)}'`;
}

/** Environment variable names a shell can `export`. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The script written once when a shell starts: it defines `__pd` (the per-command
 * runner) and prints the ready marker `\x1e<nonce>r<uid> <gid> <shell>\n`. Portable to
 * bash and dash; uses `$BASHPID` when present and `/proc/self/stat` otherwise.
 */
export function shellPrelude(readyNonce: string): string {
  return [
    // Job control: each job (here a foreground subshell) gets its own process group, so
    // that a timeout can kill the whole group.
    'set -m 2>/dev/null',
    'unset PROMPT_COMMAND 2>/dev/null',
    'PS1= PS2= PS4=+',
    '__pd() {',
    '  case "$3" in',
    '    -1) __pd_i=/dev/null ;;',
    '    /*) __pd_i=$3 ;;',
    '    0) __pd_i="${TMPDIR:-/tmp}/.paddock-stdin.$$"; : > "$__pd_i" ;;',
    '    *) __pd_i="${TMPDIR:-/tmp}/.paddock-stdin.$$"; head -c "$3" > "$__pd_i" ;;',
    '  esac',
    // The shell's own stderr is /dev/null around the job (no "Killed" notices in the
    // command's stderr); the subshell takes the real stderr back from fd 3.
    '  { (',
    '    exec 2>&3 3>&-',
    '    __pd_p=${BASHPID:-}',
    '    [ -n "$__pd_p" ] || read -r __pd_p __pd_x < /proc/self/stat',
    `    printf '\\036%sb%s\\n' "$1" "$__pd_p"`,
    `    printf '\\036%sb%s\\n' "$1" "$__pd_p" >&2`,
    '    cd -- "$2" || exit 1',
    '    __pd_c=$5$4',
    '    unset __pd_p __pd_x __pd_i; unset -f __pd; set --',
    // Shells without job control for foreground subshells (dash) get a session of their own from setsid.
    '    if [ -z "${BASH_VERSION:-}" ] && command -v setsid >/dev/null 2>&1; then exec setsid sh -c "$__pd_c"; fi',
    '    eval "unset __pd_c; $__pd_c"',
    '  ) < "$__pd_i"; } 3>&2 2>/dev/null',
    '  __pd_r=$?',
    `  printf '\\036%se%d\\n' "$1" "$__pd_r"`,
    `  printf '\\036%se\\n' "$1" >&2`,
    '  if [ "$__pd_i" != /dev/null ]; then rm -f "$__pd_i"; fi',
    '}',
    `printf '\\036%sr%s %s %s\\n' ${shellQuote(readyNonce)} "$(id -u 2>/dev/null || echo -1)" "$(id -g 2>/dev/null || echo -1)" "\${BASH_VERSION:+bash}"`,
    '',
  ].join('\n');
}

/** What one command line tells the shell. */
export interface CommandLine {
  nonce: string;
  cwd: string;
  command: string;
  env?: Record<string, string>;
  /**
   * The command's stdin: -1 for /dev/null; a byte count N when N bytes follow the line
   * (bash only: it never reads ahead of a line, dash does); or the absolute path of a
   * file already in the container (removed after the command).
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
  return `__pd ${line.nonce} ${shellQuote(line.cwd)} ${typeof line.stdin === 'number' ? line.stdin : shellQuote(line.stdin)} ${shellQuote(line.command)} ${shellQuote(exports)}\n`;
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
