#!/usr/bin/env node
/**
 * Builds dist/ (`npm run build`): the library and the CLI compiled by tsconfig.build.json
 * into JavaScript with declarations and source maps, the run-time assets the code reads
 * beside its own file, and last the build stamp (build-stamp.js) that tells bin/paddock.js
 * dist/ may run in place of the sources.
 *
 *   node bin/build.js           incremental (dist/.tsbuildinfo): seconds when little changed
 *   node bin/build.js --clean   removes dist/ first (for a package: no outputs of deleted sources)
 *
 * It is also the package's `prepare` script (npm ci, an install from a git URL), so an
 * up-to-date dist/ is recognised without loading the compiler: the stamp lists every
 * source and asset with its modification time and the folders holding them with theirs
 * (a file added to a folder changes the folder's time), which takes milliseconds; only
 * when something changed is TypeScript loaded (about a second before it compiles).
 *
 * Exit codes: 0 built; 1 type errors: dist/ is still written and stamped, since its
 * JavaScript is exactly what tsx would run from the same sources, but the build fails
 * (`npm pack` stops); 2 syntax or configuration errors, or the build lock was not had:
 * nothing is stamped, so bin/paddock.js runs the sources and reports the error itself.
 *
 * One build at a time per checkout (a lock folder in dist/): two test runs building at
 * once could otherwise stamp outputs the other one overwrote with older code.
 */
import {
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { STAMP_FILE, STAMP_VERSION, distIsFresh } from './build-stamp.js';

const ROOT = join(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist');
const CONFIG = join(ROOT, 'tsconfig.build.json');
const BUILD_INFO = join(DIST, '.tsbuildinfo');
const LOCK = join(DIST, '.build-lock');
/** Configuration whose change can change the output: stamped with the sources. */
const CONFIGS = ['tsconfig.json', 'tsconfig.build.json'];
/** How long to wait for another build to finish, in ms. */
const LOCK_WAIT_MS = 300_000;

/**
 * Files the code reads at run time relative to its own compiled file, copied to the same
 * place under dist/: trainers/rl/worker.ts starts `join(import.meta.dirname, '..',
 * 'torch', 'worker.py')`, which imports trainer.py and model.py beside it; the web
 * viewer serves viewer/static/ (every file, in subfolders too) beside viewer/*.js.
 * `recursive` takes subfolders; `mirror` makes the copy hold exactly the folder's files
 * (a file deleted from the sources is deleted from dist/ too). A folder that does not
 * exist adds nothing.
 */
const ASSETS = [
  { dir: 'trainers/torch', match: /\.py$/ },
  { dir: 'viewer/static', match: /(?:)/, recursive: true, mirror: true },
];

/** `harness/run.ts` → `harness/run.js`, relative to dist/. */
function outputOf(source) {
  return source.replace(/\.([mc]?)ts$/, '.$1js');
}

/** A repository file's path relative to the root with `/` separators, or undefined outside it. */
function repoPath(file) {
  const rel = relative(ROOT, file);
  if (rel.startsWith('..') || rel.split(sep).includes('node_modules')) return undefined;
  return rel.split(sep).join('/');
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM'; // alive, someone else's
  }
}

/** Takes the build lock, waiting for a live holder and taking over from a dead one. */
function lock() {
  mkdirSync(DIST, { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, 'pid'), String(process.pid));
      return;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    let holder;
    try {
      holder = Number(readFileSync(join(LOCK, 'pid'), 'utf8'));
    } catch {
      // The holder made the folder and has not written its pid yet, or just left.
    }
    if (holder !== undefined && holder > 0 && !isAlive(holder)) {
      rmSync(LOCK, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) {
      process.stderr.write(`build: another build (pid ${holder}) holds ${relative(ROOT, LOCK)}; gave up\n`);
      process.exit(2);
    }
    sleep(200);
  }
}

function unlock() {
  rmSync(LOCK, { recursive: true, force: true });
}

/** The TypeScript compiler, with a clear message when it is not installed. */
async function loadTypeScript() {
  try {
    return (await import('typescript')).default;
  } catch (error) {
    process.stderr.write(
      `build: cannot load the TypeScript compiler (the devDependency "typescript"): ${error.message}\n` +
        'build: install the development dependencies (npm ci) and build again\n',
    );
    unlock();
    process.exit(2);
  }
}

let ts;

const formatHost = {
  getCanonicalFileName: (file) => file,
  getCurrentDirectory: () => ROOT,
  getNewLine: () => '\n',
};

function report(diagnostics) {
  if (diagnostics.length === 0) return;
  const text = process.stderr.isTTY
    ? ts.formatDiagnosticsWithColorAndContext(diagnostics, formatHost)
    : ts.formatDiagnostics(diagnostics, formatHost);
  process.stderr.write(text);
}

/**
 * Compiles once. Records the modification time of each repository source just before
 * the compiler reads it, so that a file edited while the build runs stays newer than its
 * stamp (stale), never the other way round.
 *
 * @returns {{ code: 0 | 1 | 2, errors: number, files: Record<string, number>, missing: string[] }}
 */
function compile(parsed) {
  const files = {};
  const host = ts.createIncrementalCompilerHost(parsed.options, ts.sys);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, ...rest) => {
    const file = repoPath(fileName);
    if (file !== undefined && !file.endsWith('.d.ts')) {
      const stat = statSync(fileName, { throwIfNoEntry: false });
      if (stat !== undefined) files[file] = stat.mtimeMs;
    }
    return getSourceFile(fileName, ...rest);
  };
  const program = ts.createIncrementalProgram({
    rootNames: parsed.fileNames,
    options: parsed.options,
    projectReferences: parsed.projectReferences,
    configFileParsingDiagnostics: parsed.errors,
    host,
  });
  const fatal = [
    ...program.getConfigFileParsingDiagnostics(),
    ...program.getOptionsDiagnostics(),
    ...program.getSyntacticDiagnostics(),
  ];
  if (fatal.some((diagnostic) => diagnostic.category === ts.DiagnosticCategory.Error)) {
    report(fatal);
    return { code: 2, errors: fatal.length, files, missing: [] };
  }
  const semantic = [...program.getGlobalDiagnostics(), ...program.getSemanticDiagnostics()];
  const emitted = program.emit();
  const diagnostics = [...fatal, ...semantic, ...emitted.diagnostics];
  report(diagnostics);
  const errors = diagnostics.filter(
    (diagnostic) => diagnostic.category === ts.DiagnosticCategory.Error,
  ).length;
  if (errors > 0) process.stderr.write(`build: ${errors} error${errors === 1 ? '' : 's'}\n`);
  const sources = program
    .getProgram()
    .getSourceFiles()
    .filter((file) => !file.isDeclarationFile)
    .map((file) => repoPath(file.fileName))
    .filter((file) => file !== undefined);
  const missing = sources.filter((file) => !statSync(join(DIST, outputOf(file)), { throwIfNoEntry: false }));
  const compiled = Object.fromEntries(sources.map((file) => [file, files[file]]));
  return { code: errors > 0 ? 1 : 0, errors, files: compiled, missing };
}

function parseConfig() {
  return ts.getParsedCommandLineOfConfigFile(CONFIG, undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      report([diagnostic]);
      process.exit(2);
    },
  });
}

/** The files of `dir` (relative to the root) whose names `match`, in subfolders too when `recursive`. */
function listFolder(dir, match, recursive) {
  let entries;
  try {
    entries = readdirSync(join(ROOT, dir), { withFileTypes: true });
  } catch (error) {
    if (error.code === 'ENOENT') return [];
    throw error;
  }
  return entries.flatMap((entry) => {
    const file = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return recursive ? listFolder(file, match, recursive) : [];
    return entry.isFile() && match.test(entry.name) ? [file] : [];
  });
}

/** The asset files, relative to the root. */
function listAssets() {
  return ASSETS.flatMap(({ dir, match, recursive }) => listFolder(dir, match, recursive === true));
}

/** Copies the assets into dist/, returning their modification times as read before the copy. */
function copyAssets(assets) {
  for (const { dir, mirror } of ASSETS) {
    if (mirror) rmSync(join(DIST, dir), { recursive: true, force: true });
  }
  const files = {};
  for (const file of assets) {
    files[file] = statSync(join(ROOT, file)).mtimeMs;
    mkdirSync(dirname(join(DIST, file)), { recursive: true });
    copyFileSync(join(ROOT, file), join(DIST, file));
  }
  return files;
}

/**
 * The folders holding `files` (relative to the root) and the folders above them, but not
 * the root, with their modification times: a file added to any of them changes its time.
 */
function folderTimes(files) {
  const dirs = {};
  for (const file of files) {
    for (let dir = dirname(file); dir !== '.' && !(dir in dirs); dir = dirname(dir)) {
      const stat = statSync(join(ROOT, dir), { throwIfNoEntry: false });
      if (stat !== undefined) dirs[dir] = stat.mtimeMs;
    }
  }
  return dirs;
}

/**
 * True, without the compiler, when the last build compiled without errors from the
 * sources as they are now and no file was added or removed in a folder holding sources or
 * assets since (a new entry such as testing/index.ts is imported by nothing yet, so only
 * the folder shows it). The stamp's folders are those of the last build; a stamp without
 * them is never up to date here (the compiler then decides).
 */
function isUpToDateFast(assets) {
  if (!distIsFresh(ROOT)) return false;
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(ROOT, STAMP_FILE), 'utf8'));
  } catch {
    return false;
  }
  if (stamp.errors !== 0 || typeof stamp.dirs !== 'object' || stamp.dirs === null) return false;
  if (!assets.every((file) => file in stamp.files)) return false;
  return Object.entries(stamp.dirs).every(
    ([dir, mtimeMs]) => statSync(join(ROOT, dir), { throwIfNoEntry: false })?.mtimeMs === mtimeMs,
  );
}

/**
 * True when the last build compiled without errors from the sources as they are now and
 * no source or asset has appeared since (a new entry such as testing/index.ts is imported
 * by nothing yet, so only the listing shows it). Then nothing needs compiling, which
 * saves the seconds the compiler takes to parse everything and find that out.
 */
function isUpToDate(parsed, assets) {
  if (!distIsFresh(ROOT)) return false;
  const stamp = JSON.parse(readFileSync(join(ROOT, STAMP_FILE), 'utf8'));
  if (stamp.errors !== 0) return false; // report them again, and fail again
  return [...parsed.fileNames.map(repoPath), ...assets].every(
    (file) => file === undefined || file in stamp.files,
  );
}

function writeStamp(files, dirs, errors) {
  const temporary = join(DIST, `.build-stamp.${process.pid}.json`);
  writeFileSync(temporary, `${JSON.stringify({ version: STAMP_VERSION, errors, files, dirs }, null, 1)}\n`);
  renameSync(temporary, join(ROOT, STAMP_FILE));
}

const started = Date.now();
lock();
try {
  if (process.argv.includes('--clean')) {
    // Everything but the lock just taken, which keeps other builds waiting meanwhile.
    for (const name of readdirSync(DIST)) {
      if (join(DIST, name) !== LOCK) rmSync(join(DIST, name), { recursive: true, force: true });
    }
  }
  const assets = listAssets();
  const fast = isUpToDateFast(assets);
  let parsed, stampedDirs;
  if (!fast) {
    // The folders' times as they are before the compiler lists the sources: when nothing
    // new is found, the stamp takes them, so that the next check is the fast one again.
    stampedDirs = distIsFresh(ROOT)
      ? folderTimes(Object.keys(JSON.parse(readFileSync(join(ROOT, STAMP_FILE), 'utf8')).files))
      : undefined;
    ts = await loadTypeScript();
    parsed = parseConfig();
  }
  if (fast) {
    process.stderr.write('build: dist/ is up to date\n');
  } else if (isUpToDate(parsed, assets)) {
    const stamp = JSON.parse(readFileSync(join(ROOT, STAMP_FILE), 'utf8'));
    writeStamp(stamp.files, stampedDirs, stamp.errors);
    process.stderr.write('build: dist/ is up to date\n');
  } else {
    // dist/ is being rewritten: until the new stamp is written, bin/paddock.js runs the sources.
    rmSync(join(ROOT, STAMP_FILE), { force: true });
    const configs = Object.fromEntries(CONFIGS.map((file) => [file, statSync(join(ROOT, file)).mtimeMs]));
    // Before the compiler reads anything, as for the files' times (see compile).
    const dirs = folderTimes([...parsed.fileNames.map(repoPath).filter(Boolean), ...assets]);
    let result = compile(parsed);
    if (result.code !== 2 && result.missing.length > 0) {
      // Outputs removed by hand: the build info thinks they are current. Start it over.
      rmSync(BUILD_INFO, { force: true });
      result = compile(parsed);
    }
    if (result.code !== 2 && result.missing.length > 0) {
      process.stderr.write(`build: not emitted: ${result.missing.join(', ')}\n`);
      result.code = 2;
    }
    if (result.code !== 2) {
      const compiled = Object.keys(result.files);
      writeStamp(
        { ...configs, ...result.files, ...copyAssets(assets) },
        { ...dirs, ...folderTimes(compiled.filter((file) => !(dirname(file) in dirs))) },
        result.errors,
      );
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    process.stderr.write(
      result.code === 0
        ? `build: built dist/ from ${Object.keys(result.files).length} sources and ${assets.length} assets in ${seconds} s\n`
        : result.code === 1
          ? `build: failed after ${seconds} s: ${result.errors} type error${result.errors === 1 ? '' : 's'} (above); dist/ was written from the sources as they are\n`
          : `build: failed after ${seconds} s: the sources or the configuration could not be compiled (above); nothing was stamped, so bin/paddock.js runs the sources\n`,
    );
    process.exitCode = result.code;
  }
} finally {
  unlock();
}
