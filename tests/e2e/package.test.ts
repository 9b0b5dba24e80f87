/**
 * The package as a user gets it: dist/ (bin/build.js, what `npm run build` runs) imported
 * by plain node, without tsx, from a folder outside the repository, through the `exports`
 * of package.json; a declaration file behind each entry that a consumer's tsc resolves;
 * entries that list their names (no `export *`); bin/paddock.js running dist/ only
 * when it was built from the sources as they are, and registering tsx from dist/ only
 * for a TypeScript module; the web viewer's static files copied into dist/.
 */
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

interface PackageJson {
  name: string;
  exports: Record<string, string | { types: string; default: string }>;
  files: string[];
}
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;

/** The module entries of `exports` (all but ./package.json), with their dist files. */
const ENTRIES = Object.entries(PACKAGE.exports).flatMap(([subpath, target]) =>
  typeof target === 'string' ? [] : [{ subpath, specifier: `paddock${subpath.slice(1)}`, ...target }],
);

/** The TypeScript module a dist file is compiled from: `./dist/cli/index.js` → `cli/index.ts`. */
function sourceOf(distFile: string): string {
  return distFile.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts');
}

/**
 * The entries whose source module is in the tree. One still missing fails its own test
 * below; the others are checked meanwhile.
 */
const PRESENT = ENTRIES.filter((entry) => existsSync(join(ROOT, sourceOf(entry.default))));

/** Names each entry must export (a sample across its groups, not the whole list). */
const EXPECTED: Record<string, string[]> = {
  paddock: [
    'evaluate',
    'resume',
    'loadTasks',
    'runEpisode',
    'defineTool',
    'PaddockError',
    'ERROR_CODES',
    'RunStore',
    'DockerSandboxProvider',
    'OpenAIAgent',
    'McpToolProvider',
    'BrowserToolProvider',
    'exportRun',
  ],
  'paddock/docker': [
    'DockerSandboxProvider',
    'DockerSandbox',
    'checkEngine',
    'collectGarbage',
    'bootstrapBaseImage',
  ],
  'paddock/browser': ['BrowserToolProvider', 'browserTaskExtension', 'BrowserSession'],
  'paddock/mcp': ['McpToolProvider', 'mcpTaskExtension', 'serveTask'],
  'paddock/onnx': ['OnnxPolicyAgent', 'createOnnxAgent', 'loadOnnxPolicy'],
};

/** The folders the build compiles (tsconfig.build.json); tasks/ below its top level is task data. */
const SOURCE_FOLDERS = ['harness', 'sandboxes', 'agents', 'trainers', 'rewards', 'export', 'cli', 'testing'];

function run(command: string, args: string[], cwd: string) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 300_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

let outside: string;

beforeAll(() => {
  // Exit 1 is type errors somewhere in the tree: dist/ is still written and stamped, and
  // `npm run check` is where they fail. Exit 2 (syntax) leaves nothing stamped.
  const build = run(process.execPath, [join(ROOT, 'bin/build.js')], ROOT);
  expect([0, 1], build.stderr).toContain(build.code);
  // A user's project: its node_modules/paddock is the package (a link, as `npm link` makes).
  outside = mkdtempSync(join(tmpdir(), 'paddock-package-'));
  mkdirSync(join(outside, 'node_modules'));
  symlinkSync(ROOT, join(outside, 'node_modules', 'paddock'), 'dir');
  writeFileSync(join(outside, 'package.json'), JSON.stringify({ name: 'user-project', type: 'module' }));
});

afterAll(() => {
  if (outside) rmSync(outside, { recursive: true, force: true });
});

describe('the package entries', () => {
  it('lists the main entry, docker, browser, mcp, onnx and testing, each with types and code in dist/', () => {
    expect(ENTRIES.map((entry) => entry.subpath)).toEqual([
      '.',
      './docker',
      './browser',
      './mcp',
      './onnx',
      './testing',
    ]);
    for (const entry of ENTRIES) {
      expect(entry.types, entry.subpath).toMatch(/^\.\/dist\/.*\.d\.ts$/);
      expect(entry.default, entry.subpath).toMatch(/^\.\/dist\/.*\.js$/);
    }
    expect(PACKAGE.exports['./package.json']).toBe('./package.json');
  });

  it('has the source module of every entry in the tree', () => {
    expect(
      ENTRIES.filter((entry) => !PRESENT.includes(entry)).map((entry) => sourceOf(entry.default)),
    ).toEqual([]);
  });

  it('builds a compiled module and a declaration file for every entry', () => {
    for (const entry of PRESENT) {
      expect(existsSync(join(ROOT, entry.default)), entry.default).toBe(true);
      expect(existsSync(join(ROOT, entry.types)), entry.types).toBe(true);
    }
  });

  it('imports every entry with plain node from outside the repository, with the names it should export', () => {
    const script = `
      const names = {};
      for (const specifier of ${JSON.stringify(PRESENT.map((entry) => entry.specifier))}) {
        names[specifier] = Object.keys(await import(specifier));
      }
      const { createRequire } = await import('node:module');
      names.packageJson = createRequire(import.meta.url)('paddock/package.json').name;
      process.stdout.write(JSON.stringify(names));
    `;
    const result = run(process.execPath, ['--input-type=module', '-e', script], outside);
    expect(result.code, result.stderr).toBe(0);
    const names = JSON.parse(result.stdout) as Record<string, string[]> & { packageJson: string };
    expect(names.packageJson).toBe('paddock');
    for (const { specifier } of PRESENT) {
      expect(names[specifier], specifier).toEqual(expect.arrayContaining(EXPECTED[specifier] ?? []));
      expect(names[specifier]?.length, specifier).toBeGreaterThan(0);
    }
  });

  it("resolves each entry's declarations in a consumer's tsc (NodeNext), to real types rather than any", () => {
    writeFileSync(
      join(outside, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2023',
          strict: true,
          noEmit: true,
          // Dependencies' own declarations are theirs to check; `IsAny` below catches an
          // import of ours that fails to resolve (skipLibCheck would make it `any` silently).
          skipLibCheck: true,
          typeRoots: [join(ROOT, 'node_modules/@types')],
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    writeFileSync(
      join(outside, 'consumer.ts'),
      `
      import { evaluate, loadTasks, PaddockError, type EpisodeRecord, type Sandbox, type Task } from 'paddock';
      import { DockerSandboxProvider, type DockerSandboxProviderOptions } from 'paddock/docker';
      import { BrowserToolProvider } from 'paddock/browser';
      import { McpToolProvider } from 'paddock/mcp';
      import { OnnxPolicyAgent } from 'paddock/onnx';
      ${PRESENT.map((entry, index) => `import * as entry${index} from '${entry.specifier}';`).join('\n')}

      type IsAny<T> = 0 extends 1 & T ? true : false;
      export const notAny: [
        IsAny<Task>, IsAny<Sandbox>, IsAny<EpisodeRecord>, IsAny<typeof evaluate>, IsAny<typeof loadTasks>,
        IsAny<PaddockError>, IsAny<DockerSandboxProvider>, IsAny<DockerSandboxProviderOptions>,
        IsAny<BrowserToolProvider>, IsAny<McpToolProvider>, IsAny<OnnxPolicyAgent>,
        ${PRESENT.map((_, index) => `IsAny<typeof entry${index}>`).join(', ')},
      ] = [false, false, false, false, false, false, false, false, false, false, false, ${PRESENT.map(() => 'false').join(', ')}];
      export const taskId = (task: Task): string => task.id;
      `,
    );
    const result = run(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', outside],
      outside,
    );
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('has no export * in an entry module or in any folder index of the sources', () => {
    const indexes = SOURCE_FOLDERS.filter((folder) => existsSync(join(ROOT, folder))).flatMap((folder) =>
      readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
        .filter((file) => file === 'index.ts' || file.endsWith('/index.ts'))
        .map((file) => `${folder}/${file}`),
    );
    const modules = new Set([...PRESENT.map((entry) => sourceOf(entry.default)), ...indexes]);
    expect(modules).toContain('harness/index.ts');
    for (const module of modules) {
      expect(readFileSync(join(ROOT, module), 'utf8'), module).not.toMatch(/^\s*export\s*\*/m);
    }
  });

  it('copies the torch worker into dist/, where the compiled trainer looks for it', async () => {
    const worker = (await import(join(ROOT, 'dist/trainers/rl/worker.js'))) as { WORKER_SCRIPT: string };
    expect(worker.WORKER_SCRIPT).toBe(join(ROOT, 'dist/trainers/torch/worker.py'));
    for (const file of ['worker.py', 'trainer.py', 'model.py']) {
      expect(existsSync(join(ROOT, 'dist/trainers/torch', file)), file).toBe(true);
    }
  });

  it("copies the web viewer's static files into dist/, stamped with the sources", () => {
    const statics = existsSync(join(ROOT, 'viewer/static'))
      ? readdirSync(join(ROOT, 'viewer/static'), { recursive: true, encoding: 'utf8' }).filter((file) =>
          statSync(join(ROOT, 'viewer/static', file)).isFile(),
        )
      : [];
    const stamped = Object.keys(
      (
        JSON.parse(readFileSync(join(ROOT, 'dist/.build-stamp.json'), 'utf8')) as {
          files: Record<string, number>;
        }
      ).files,
    );
    for (const file of statics) {
      expect(readFileSync(join(ROOT, 'dist/viewer/static', file)), file).toEqual(
        readFileSync(join(ROOT, 'viewer/static', file)),
      );
      expect(stamped, file).toContain(`viewer/static/${file.split('\\').join('/')}`);
    }
  });

  it('packs dist/ and the command, without sources, tests, build state or task data', () => {
    const result = run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT);
    expect(result.code, result.stderr).toBe(0);
    const [pack] = JSON.parse(result.stdout) as [{ files: { path: string }[] }];
    const files = pack.files.map((file) => file.path);
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'bin/paddock.js',
        'bin/build-stamp.js',
        'dist/cli/index.js',
        'dist/cli/index.d.ts',
        'dist/cli/main.js',
        'dist/trainers/torch/worker.py',
      ]),
    );
    const unexpected = files.filter(
      (file) =>
        !/^(package\.json|README\.md|LICENSE|bin\/paddock\.js|bin\/build-stamp\.js|dist\/.*)$/.test(file),
    );
    expect(unexpected).toEqual([]);
    expect(files.filter((file) => /^dist\/\.|\.test\.|\.tsbuildinfo$/.test(file))).toEqual([]);
  });
});

describe('bin/paddock.js', () => {
  /**
   * A package of its own with bin/ as it is, a CLI source that prints `source` and a
   * compiled one that prints `dist`, each then importing the module named by its argument
   * if any: the source with `import()` (tsx is registered), the compiled one as the
   * library does with `--plugin` modules (importModule of dist/harness/plugin.js), or with
   * a plain `import()` when the second argument is `plain`; a failed import prints its
   * error's code.
   */
  function fakePackage(): string {
    const dir = mkdtempSync(join(tmpdir(), 'paddock-bin-'));
    cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
    mkdirSync(join(dir, 'cli'));
    mkdirSync(join(dir, 'dist/cli'), { recursive: true });
    const load = 'const arg = process.argv[2];\nif (arg) console.log((await import(arg)).name);\n';
    writeFileSync(join(dir, 'cli/main.ts'), `const from: string = 'source';\nconsole.log(from);\n${load}`);
    const importModule = JSON.stringify(pathToFileURL(join(ROOT, 'dist/harness/plugin.js')).href);
    writeFileSync(
      join(dir, 'dist/cli/main.js'),
      `console.log('dist');
const [arg, how] = process.argv.slice(2);
if (arg) {
  const load = how === 'plain' ? (url) => import(url) : (await import(${importModule})).importModule;
  try {
    console.log((await load(arg)).name);
  } catch (error) {
    console.log(error.code ?? error.message);
  }
}
`,
    );
    writeFileSync(join(dir, 'dist/cli/index.js'), 'export {};\n');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'paddock', type: 'module' }));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    return dir;
  }

  /** The stamp as bin/build.js writes it: each source's modification time when compiled. */
  async function stamp(dir: string, files: string[]): Promise<void> {
    const { STAMP_FILE, STAMP_VERSION } = (await import(join(ROOT, 'bin/build-stamp.js'))) as {
      STAMP_FILE: string;
      STAMP_VERSION: number;
    };
    const times = Object.fromEntries(files.map((file) => [file, statSync(join(dir, file)).mtimeMs]));
    writeFileSync(join(dir, STAMP_FILE), JSON.stringify({ version: STAMP_VERSION, errors: 0, files: times }));
  }

  function paddock(dir: string, ...args: string[]): string {
    const result = run(process.execPath, [join(dir, 'bin/paddock.js'), ...args], dir);
    expect(result.code, result.stderr).toBe(0);
    return result.stdout.trim();
  }

  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  function fresh(): string {
    const dir = fakePackage();
    dirs.push(dir);
    return dir;
  }

  it('runs dist/ when it was built from the sources as they are', async () => {
    const dir = fresh();
    await stamp(dir, ['cli/main.ts']);
    expect(paddock(dir)).toBe('dist');
  });

  /** A TypeScript module only a TypeScript loader imports (an enum: Node's own type stripping refuses it). */
  function typedPlugin(dir: string): string {
    writeFileSync(
      join(dir, 'plugin.ts'),
      "enum Name { Typed = 'typed plug-in' }\nexport const name: string = Name.Typed;\n",
    );
    return pathToFileURL(join(dir, 'plugin.ts')).href;
  }

  it('imports a TypeScript module at run time from dist/ as it does from the sources', async () => {
    const dir = fresh();
    const plugin = typedPlugin(dir);
    expect(paddock(dir, plugin)).toBe('source\ntyped plug-in');
    await stamp(dir, ['cli/main.ts']);
    expect(paddock(dir, plugin)).toBe('dist\ntyped plug-in');
  });

  it('registers no TypeScript loader from dist/ until a TypeScript module is imported', async () => {
    const dir = fresh();
    const plugin = typedPlugin(dir);
    await stamp(dir, ['cli/main.ts']);
    const plain = paddock(dir, plugin, 'plain').split('\n');
    expect(plain[0]).toBe('dist');
    expect(plain[1]).toMatch(/^ERR_/);
  });

  it('runs the sources when one changed after the build', async () => {
    const dir = fresh();
    await stamp(dir, ['cli/main.ts']);
    const later = new Date(Date.now() + 10_000);
    utimesSync(join(dir, 'cli/main.ts'), later, later);
    expect(paddock(dir)).toBe('source');
  });

  it('runs the sources when one was put back with an older time (a checkout)', async () => {
    const dir = fresh();
    await stamp(dir, ['cli/main.ts']);
    const earlier = new Date(Date.now() - 3_600_000);
    utimesSync(join(dir, 'cli/main.ts'), earlier, earlier);
    expect(paddock(dir)).toBe('source');
  });

  it('runs the sources when dist/ was never stamped (no build, or one under way or failed)', () => {
    expect(paddock(fresh())).toBe('source');
  });

  it('runs the sources when a stamped source is gone', async () => {
    const dir = fresh();
    writeFileSync(join(dir, 'cli/gone.ts'), '');
    await stamp(dir, ['cli/main.ts', 'cli/gone.ts']);
    rmSync(join(dir, 'cli/gone.ts'));
    expect(paddock(dir)).toBe('source');
  });

  it('runs dist/ in an installed package, which has no sources', () => {
    const dir = fresh();
    rmSync(join(dir, 'cli'), { recursive: true });
    expect(paddock(dir)).toBe('dist');
  });
});

describe('bin/build.js', () => {
  /**
   * A package of its own with bin/ as it is, the two tsconfig files, a CLI module and a
   * module it imports, and the viewer's static files; node_modules holds only typescript (a link), so that
   * taking the link away shows whether a build loaded the compiler.
   */
  function buildPackage(): string {
    const dir = mkdtempSync(join(tmpdir(), 'paddock-build-'));
    cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'paddock', type: 'module' }));
    const options = {
      module: 'NodeNext',
      target: 'ES2023',
      strict: true,
      types: [],
      noEmit: true,
      allowImportingTsExtensions: true,
      rewriteRelativeImportExtensions: true,
    };
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: options, include: ['lib', 'cli'] }),
    );
    writeFileSync(
      join(dir, 'tsconfig.build.json'),
      JSON.stringify({
        extends: './tsconfig.json',
        compilerOptions: {
          noEmit: false,
          outDir: 'dist',
          rootDir: '.',
          incremental: true,
          tsBuildInfoFile: 'dist/.tsbuildinfo',
        },
        include: ['lib', 'cli'],
      }),
    );
    mkdirSync(join(dir, 'lib'));
    writeFileSync(join(dir, 'lib/a.ts'), 'export const a: number = 1;\n');
    mkdirSync(join(dir, 'cli'));
    writeFileSync(join(dir, 'cli/main.ts'), "import { a } from '../lib/a.ts';\nconsole.log(a);\n");
    mkdirSync(join(dir, 'viewer/static/img'), { recursive: true });
    writeFileSync(join(dir, 'viewer/static/index.html'), '<!doctype html>\n');
    writeFileSync(join(dir, 'viewer/static/img/logo.svg'), '<svg/>\n');
    mkdirSync(join(dir, 'node_modules'));
    linkTypeScript(dir);
    return dir;
  }

  function linkTypeScript(dir: string): void {
    symlinkSync(join(ROOT, 'node_modules/typescript'), join(dir, 'node_modules/typescript'), 'dir');
  }

  function build(dir: string) {
    return run(process.execPath, [join(dir, 'bin/build.js')], dir);
  }

  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('builds the sources and copies viewer/static/, subfolders too, into dist/', () => {
    const dir = buildPackage();
    dirs.push(dir);
    const first = build(dir);
    expect(first.code, first.stderr).toBe(0);
    expect(existsSync(join(dir, 'dist/lib/a.js'))).toBe(true);
    expect(readFileSync(join(dir, 'dist/viewer/static/img/logo.svg'), 'utf8')).toBe('<svg/>\n');
    expect(readFileSync(join(dir, 'dist/viewer/static/index.html'), 'utf8')).toBe('<!doctype html>\n');
  });

  it('knows an up-to-date dist/ without loading the compiler, and notices a file added since', () => {
    const dir = buildPackage();
    dirs.push(dir);
    expect(build(dir).code).toBe(0);
    rmSync(join(dir, 'node_modules/typescript'));
    const again = build(dir);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('dist/ is up to date');

    writeFileSync(join(dir, 'lib/b.ts'), 'export const b: number = 2;\n');
    const added = build(dir);
    expect(added.code).toBe(2);
    expect(added.stderr).toContain('cannot load the TypeScript compiler (the devDependency "typescript")');
    linkTypeScript(dir);
    expect(build(dir).code).toBe(0);
    expect(existsSync(join(dir, 'dist/lib/b.js'))).toBe(true);
  });

  it('rebuilds when a static file changes or goes, and keeps dist/viewer/static/ to the files there are', () => {
    const dir = buildPackage();
    dirs.push(dir);
    expect(build(dir).code).toBe(0);
    rmSync(join(dir, 'viewer/static/img/logo.svg'));
    writeFileSync(join(dir, 'viewer/static/index.html'), '<!doctype html><title>v2</title>\n');
    const rebuilt = build(dir);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(existsSync(join(dir, 'dist/viewer/static/img/logo.svg'))).toBe(false);
    expect(readFileSync(join(dir, 'dist/viewer/static/index.html'), 'utf8')).toContain('v2');
  });

  it('builds a package without a viewer/static folder', () => {
    const dir = buildPackage();
    dirs.push(dir);
    rmSync(join(dir, 'viewer'), { recursive: true });
    const result = build(dir);
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(join(dir, 'dist/viewer'))).toBe(false);
  });
});
