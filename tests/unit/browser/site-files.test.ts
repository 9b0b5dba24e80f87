import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveSiteFile } from '../../../sandboxes/browser/site-server.ts';

const task = realpathSync(mkdtempSync(path.join(tmpdir(), 'paddock-site-')));
const root = path.join(task, 'site');
mkdirSync(path.join(root, 'docs'), { recursive: true });
mkdirSync(path.join(root, '.git'));
writeFileSync(path.join(root, 'index.html'), '<p>home</p>');
writeFileSync(path.join(root, 'docs', 'index.html'), '<p>docs</p>');
writeFileSync(path.join(root, 'scorer.js'), '() => true');
writeFileSync(path.join(root, '.git', 'config'), 'secret');
writeFileSync(path.join(task, 'scorer.js'), '() => true');
symlinkSync(path.join(task, 'scorer.js'), path.join(root, 'link.js'));
const denied = new Set([path.join(root, 'scorer.js')]);

describe('resolveSiteFile', () => {
  it('serves files inside the site, and index.html for a folder', async () => {
    expect(await resolveSiteFile(root, '/', denied)).toBe(path.join(root, 'index.html'));
    expect(await resolveSiteFile(root, '/docs/', denied)).toBe(path.join(root, 'docs', 'index.html'));
    expect(await resolveSiteFile(root, '/docs/index.html', denied)).toBe(
      path.join(root, 'docs', 'index.html'),
    );
  });

  it('refuses to leave the site, by .. or by encoded .. or by a symbolic link', async () => {
    expect(await resolveSiteFile(root, '/../scorer.js', denied)).toBeUndefined();
    expect(await resolveSiteFile(root, '/docs/%2e%2e/%2e%2e/scorer.js', denied)).toBeUndefined();
    expect(await resolveSiteFile(root, '/link.js', denied)).toBeUndefined();
  });

  it('refuses denied files, dot-files, missing files and malformed paths', async () => {
    expect(await resolveSiteFile(root, '/scorer.js', denied)).toBeUndefined();
    expect(await resolveSiteFile(root, '/.git/config', denied)).toBeUndefined();
    expect(await resolveSiteFile(root, '/nothing.html', denied)).toBeUndefined();
    expect(await resolveSiteFile(root, '/%E0%A4%A', denied)).toBeUndefined();
    expect(await resolveSiteFile(root, '/a%00b', denied)).toBeUndefined();
  });
});
