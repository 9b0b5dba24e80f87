/**
 * The harness knows no task format: the folders, test runners and conventions of Harbor,
 * Terminal-Bench or pytest are the loaders' (tasks/), which put them into the `Task` as
 * data (`VerifierSpec.logDirs`, `keepDir`, a `RewardReader`…). This scans the code of
 * harness/**.ts, comments left out (they may name a format as an example, the code may
 * not), for the names of formats and their paths.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const HARNESS = join(ROOT, 'harness');

/** What only a task format knows: its log folders, its test runner, its report format, its name. */
const FORMAT_WORDS: { name: string; pattern: RegExp }[] = [
  { name: 'a /logs/ path (Harbor)', pattern: /\/logs\b/i },
  { name: 'pytest', pattern: /pytest|py\.test/i },
  { name: 'JUnit', pattern: /junit/i },
  { name: 'Harbor', pattern: /harbor/i },
  { name: 'Terminal-Bench', pattern: /terminal[-_ ]?bench/i },
];

/**
 * Known exceptions, each the exact code line that holds it: remove an entry when its line
 * is gone (the test fails until then). None today.
 */
const KNOWN: { file: string; line: string }[] = [];

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/**
 * The file's text with every comment replaced by spaces (line numbers kept). Comments are
 * the trivia around each token of the parsed file, so that `//` in a string, a template
 * or a regular expression is never taken for one.
 */
function withoutComments(text: string): string {
  const source = ts.createSourceFile('file.ts', text, ts.ScriptTarget.Latest, true);
  const comments: ts.CommentRange[] = [];
  const visit = (node: ts.Node): void => {
    if (node.kind >= ts.SyntaxKind.FirstJSDocNode && node.kind <= ts.SyntaxKind.LastJSDocNode) return;
    const children = node.getChildren(source);
    if (children.length > 0) return children.forEach(visit);
    // A comment on the line of the token before is that token's trailing trivia, not this one's leading.
    comments.push(
      ...(ts.getLeadingCommentRanges(text, node.getFullStart()) ?? []),
      ...(ts.getTrailingCommentRanges(text, node.getEnd()) ?? []),
    );
  };
  visit(source);
  let out = text;
  for (const { pos, end } of comments)
    out = out.slice(0, pos) + out.slice(pos, end).replace(/[^\n]/g, ' ') + out.slice(end);
  return out;
}

/** Every line of harness code that names a task format, as `file:line: text (what)`. */
function formatMentions(): { file: string; line: string; where: string }[] {
  const found: { file: string; line: string; where: string }[] = [];
  for (const path of tsFiles(HARNESS)) {
    const file = relative(ROOT, path).split('\\').join('/');
    const lines = withoutComments(readFileSync(path, 'utf8')).split('\n');
    lines.forEach((text, index) => {
      for (const { name, pattern } of FORMAT_WORDS) {
        if (pattern.test(text))
          found.push({ file, line: text.trim(), where: `${file}:${index + 1}: ${text.trim()} (${name})` });
      }
    });
  }
  return found;
}

describe('the harness knows no task format', () => {
  it('names no format, format folder, test runner or report format in the code of harness/', () => {
    const unexpected = formatMentions().filter(
      (found) => !KNOWN.some((known) => known.file === found.file && known.line === found.line),
    );
    expect(unexpected.map((found) => found.where)).toEqual([]);
  });

  it('lists only exceptions that still exist', () => {
    const mentions = formatMentions();
    const stale = KNOWN.filter(
      (known) => !mentions.some((found) => found.file === known.file && found.line === known.line),
    );
    expect(stale).toEqual([]);
  });

  it('sees a format name in code and not in a comment (the scan itself)', () => {
    const code = withoutComments(
      [
        '/** Harbor */',
        "const a = 'x'; // pytest",
        '/* junit */ const dir = `//${a}/logs/verifier`;',
        'const re = /\\/\\/pytest/;',
        '// harbor at the end',
      ].join('\n'),
    );
    expect(code).not.toMatch(/harbor|junit|\/\/ pytest/i);
    expect(code).toContain('`//${a}/logs/verifier`');
    expect(code).toContain('/\\/\\/pytest/');
    expect(code.split('\n')).toHaveLength(5);
  });
});
