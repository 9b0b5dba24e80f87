/**
 * paddock's own format: a folder with `task.yaml` (see tasks/README.md), mapped onto the
 * harness's `Task`.
 */
import path from 'node:path';
import type { z } from 'zod';
import {
  taskPathsOf,
  type EnvironmentSpec,
  type FileMount,
  type SolutionSpec,
  type Task,
  type TaskPathKind,
  type VerifierSpec,
} from '../harness/task.ts';
import { expandDataset } from './dataset.ts';
import {
  ALL_TOOLS,
  DEFAULT_REWARD_RANGE,
  DEFAULT_IMAGE,
  DEFAULT_LIMITS,
  DEFAULT_RESOURCES,
  DEFAULT_VERIFIER_COMMAND,
  DEFAULT_VERIFIER_TIMEOUT_MS,
  REWARD_DIR,
  SOLUTION_DIR,
  TESTS_DIR,
  secondsToMs,
  verifierConventions,
} from './defaults.ts';
import { pytestOutputReward } from './pytest-output.ts';
import { resolveEnvTable, type HostEnvAccess } from './env.ts';
import { readText } from './files.ts';
import { taskPath } from './paths.ts';
import { taskFileErrorMap, zodIssuesToProblems, type TaskProblem } from './problems.ts';
import type { TaskFile } from './schema.ts';

/** What the native loader needs to know about one task folder. */
export interface NativeTaskSource {
  /** The task folder (absolute). */
  dir: string;
  /** Its `task.yaml` (absolute). */
  file: string;
  /** The parsed YAML, not yet validated. */
  raw: unknown;
  /** Prepended to the task id: `examples/` inside the suite `examples`, `''` for a folder given directly. */
  idPrefix: string;
  /** TaskFileSchema extended with the registered plug-in sections. */
  schema: z.ZodType;
  /** The registered plug-in sections by name (their schemas may declare the paths they name). */
  extensions: Readonly<Record<string, z.ZodType>>;
  /** Host variables and which of them `${NAME}` templates may read. */
  env: HostEnvAccess;
}

/**
 * Validates and maps one `task.yaml`. Returns one task, or one per dataset row, or the
 * problems found (every one this file has, as far as a valid schema lets us see).
 */
export async function loadNativeTask(
  source: NativeTaskSource,
): Promise<{ tasks: Task[]; problems: TaskProblem[] }> {
  const { dir, file, raw } = source;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return {
      tasks: [],
      problems: [{ file, path: '', message: 'expected a mapping of task fields at the top of the file' }],
    };
  }
  const parsed = source.schema.safeParse(raw, { error: taskFileErrorMap });
  if (!parsed.success) {
    return {
      tasks: [],
      problems: zodIssuesToProblems(parsed.error.issues, file, source.schema, [], (segments) =>
        segments.length === 0
          ? 'unknown key: not a task.yaml field, and no plug-in registered a section of this name'
          : undefined,
      ),
    };
  }
  const data = parsed.data as TaskFile & Record<string, unknown>;
  const problems: TaskProblem[] = [];
  const problem = (where: string, message: string) => problems.push({ file, path: where, message });
  const report = (found: TaskProblem) => problems.push(found);
  const envOf = (env: Record<string, string | number | boolean> | undefined, where: string) =>
    resolveEnvTable(env, source.env, file, where, report);

  /**
   * A path the file names (or implies, when `required` is false) must resolve inside the
   * task folder; a folder may hold no link leading out. Returns the resolved path.
   */
  const checked = async (
    relative: string,
    where: string,
    want: TaskPathKind = 'any',
    required = true,
  ): Promise<string | undefined> =>
    (await taskPath(dir, relative, want, { file, field: where }, report, { required }))?.path;
  const mustExist = (relative: string, where: string, want: TaskPathKind = 'any') =>
    checked(relative, where, want, true);
  /** An implied path (instruction.md, tests/…): its resolved path, `undefined` when absent, `null` when refused (reported). */
  const ifPresent = async (relative: string, where: string, want: TaskPathKind) => {
    const before = problems.length;
    const found = await checked(relative, where, want, false);
    return found ?? (problems.length > before ? null : undefined);
  };
  const mounts = async (
    files: { from: string; to: string }[] | undefined,
    where: string,
  ): Promise<FileMount[]> => {
    const result: FileMount[] = [];
    for (const [index, copy] of (files ?? []).entries()) {
      const hostPath = await mustExist(copy.from, `${where}.${index}.from`);
      if (hostPath !== undefined) result.push({ hostPath, sandboxPath: copy.to });
    }
    return result;
  };

  // instruction: inline, or instruction.md beside task.yaml; exactly one.
  const markdownPath = path.join(dir, 'instruction.md');
  const markdown = await ifPresent('instruction.md', 'instruction', 'file');
  const hasMarkdown = markdown !== undefined;
  let instruction = data.instruction ?? '';
  if (markdown === null) {
    // Refused above (it leads outside the task folder).
  } else if (data.instruction !== undefined && hasMarkdown) {
    problem('instruction', 'given both here and in instruction.md: keep exactly one');
  } else if (data.instruction === undefined && !hasMarkdown) {
    problem('instruction', 'required: expected the instruction text, or an instruction.md beside task.yaml');
  } else if (data.instruction === undefined) {
    const read = await readText(markdown ?? markdownPath);
    if (!read.ok) problems.push(...read.problems.map((found) => ({ ...found, file: markdownPath })));
    else if (read.text.trim() === '')
      problems.push({ file: markdownPath, path: '', message: 'the instruction is empty' });
    else instruction = read.text.trimEnd();
  }

  // environment: false = no sandbox; otherwise an image, a Dockerfile, or the defaults.
  let environment: EnvironmentSpec | undefined;
  if (data.environment !== false) {
    const block = data.environment ?? {};
    let image: string | undefined;
    let build: EnvironmentSpec['build'];
    if (block.image !== undefined && block.dockerfile !== undefined) {
      problem('environment.dockerfile', 'give either environment.image or environment.dockerfile, not both');
    } else if (block.image !== undefined) {
      image = block.image;
    } else if (block.dockerfile !== undefined) {
      const dockerfile = await mustExist(block.dockerfile, 'environment.dockerfile', 'file');
      // The build context is the Dockerfile's folder: it must hold no link leading out either.
      const context =
        dockerfile === undefined
          ? undefined
          : await mustExist(path.dirname(block.dockerfile), 'environment.dockerfile', 'dir');
      if (dockerfile && context) build = { contextDir: context, dockerfile: path.basename(dockerfile) };
    } else if (await ifPresent('environment/Dockerfile', 'environment.dockerfile', 'file')) {
      const context = await mustExist('environment', 'environment.dockerfile', 'dir');
      if (context !== undefined) build = { contextDir: context, dockerfile: 'Dockerfile' };
    } else {
      image = DEFAULT_IMAGE;
    }
    environment = {
      ...(image !== undefined ? { image } : {}),
      ...(build !== undefined ? { build } : {}),
      cpus: block.cpus ?? DEFAULT_RESOURCES.cpus,
      memoryMb: block.memory_mb ?? DEFAULT_RESOURCES.memoryMb,
      pids: block.pids ?? DEFAULT_RESOURCES.pids,
      ...(block.storage_mb !== undefined ? { storageMb: block.storage_mb } : {}),
      network: block.network ?? false,
      ...(block.workdir !== undefined ? { workdir: block.workdir } : {}),
      ...(block.user !== undefined ? { user: block.user } : {}),
      env: envOf(block.env, 'environment.env'),
      files: await mounts(block.files, 'environment.files'),
    };
  }

  // tools: all five with a sandbox, only submit without one.
  const tools = data.tools ?? (environment ? [...ALL_TOOLS] : ['submit' as const]);
  const duplicates = tools.filter((tool, index) => tools.indexOf(tool) !== index);
  if (duplicates.length > 0) problem('tools', `"${duplicates[0]}" is listed twice`);
  if (!environment) {
    const needSandbox = tools.filter((tool) => tool !== 'submit');
    if (needSandbox.length > 0)
      problem(
        'tools',
        `${needSandbox.join(', ')} ${needSandbox.length === 1 ? 'needs' : 'need'} a sandbox, but environment is false`,
      );
  }

  const limits = {
    maxTurns: data.limits?.max_turns ?? DEFAULT_LIMITS.maxTurns,
    timeoutMs:
      data.limits?.timeout_sec !== undefined
        ? secondsToMs(data.limits.timeout_sec)
        : DEFAULT_LIMITS.timeoutMs,
    ...(data.limits?.max_tokens !== undefined ? { maxTokens: data.limits.max_tokens } : {}),
    commandTimeoutMs:
      data.limits?.command_timeout_sec !== undefined
        ? secondsToMs(data.limits.command_timeout_sec)
        : DEFAULT_LIMITS.commandTimeoutMs,
  };

  // verifier: false = none; otherwise tests/ → /tests and a command (bash /tests/test.sh by default).
  let verifier: VerifierSpec | undefined;
  if (data.verifier !== false) {
    const block = data.verifier ?? {};
    const testsDir = await ifPresent('tests', 'verifier', 'dir');
    const hasTests = testsDir !== undefined;
    if (block.command === undefined && testsDir !== null) {
      if (!hasTests) {
        problem(
          'verifier',
          'no verifier: expected tests/test.sh in the task folder, a verifier.command, or verifier: false',
        );
      } else if ((await ifPresent('tests/test.sh', 'verifier.command', 'file')) === undefined) {
        problem(
          'verifier.command',
          `required: tests/ has no test.sh to run by default (${DEFAULT_VERIFIER_COMMAND})`,
        );
      }
    }
    if (!environment) problem('verifier', 'a verifier runs in the sandbox, but environment is false');
    verifier = {
      files: [
        ...(testsDir ? [{ hostPath: testsDir, sandboxPath: TESTS_DIR }] : []),
        ...(await mounts(block.files, 'verifier.files')),
      ],
      command: block.command ?? DEFAULT_VERIFIER_COMMAND,
      ...(block.cwd !== undefined ? { cwd: block.cwd } : {}),
      env: envOf(block.env, 'verifier.env'),
      timeoutMs:
        block.timeout_sec !== undefined ? secondsToMs(block.timeout_sec) : DEFAULT_VERIFIER_TIMEOUT_MS,
      user: block.user ?? 'root',
      reward:
        block.reward === 'exit-code'
          ? { kind: 'exit-code' }
          : block.reward === 'pytest-output'
            ? pytestOutputReward()
            : { kind: 'files', dir: REWARD_DIR },
      ...verifierConventions(),
      rewardRange: block.reward_range
        ? [block.reward_range[0], block.reward_range[1]]
        : [...DEFAULT_REWARD_RANGE],
      ...(block.isolation === 'container'
        ? { isolation: { kind: 'container' as const, ...(block.copy ? { copy: block.copy } : {}) } }
        : {}),
    };
    if (block.copy !== undefined && block.isolation !== 'container')
      problem(
        'verifier.copy',
        'copy needs isolation: container (without it the verifier sees every file as is)',
      );
    if (
      block.isolation === 'container' &&
      block.copy === undefined &&
      environment &&
      environment.workdir === '/'
    )
      problem(
        'verifier.copy',
        'required: isolation: container copies the workdir by default, but the workdir is / (list the paths to copy)',
      );
  }

  // solution: a script (its folder uploaded to /solution), or reference tool calls.
  let solution: SolutionSpec | undefined;
  const written = data.solution;
  if (Array.isArray(written)) {
    solution = {
      kind: 'actions',
      actions: written.map((action) => ({ tool: action.tool, arguments: action.arguments ?? {} })),
    };
  } else {
    const script =
      typeof written === 'string'
        ? { path: written, where: 'solution', env: {} }
        : written !== undefined
          ? { path: written.script, where: 'solution.script', env: envOf(written.env, 'solution.env') }
          : (await ifPresent('solution/solve.sh', 'solution', 'file'))
            ? { path: 'solution/solve.sh', where: 'solution', env: {} }
            : undefined;
    if (script) {
      const hostPath = await mustExist(script.path, script.where, 'file');
      if (!environment)
        problem(script.where, 'a solution script runs in the sandbox, but environment is false');
      // The script's folder is uploaded whole (unless it is the task folder itself).
      const folderWritten = path.dirname(script.path);
      const folder =
        hostPath === undefined || path.resolve(dir, folderWritten) === path.resolve(dir)
          ? dir
          : await mustExist(folderWritten, script.where, 'dir');
      if (hostPath !== undefined && folder !== undefined) {
        const name = path.basename(script.path);
        solution = {
          kind: 'script',
          // A script at the task's root goes alone: its folder would also hold tests/.
          files: [
            folder === dir
              ? { hostPath, sandboxPath: `${SOLUTION_DIR}/${name}` }
              : { hostPath: folder, sandboxPath: SOLUTION_DIR },
          ],
          command: `bash ${SOLUTION_DIR}/${name}`,
          env: script.env,
        };
      }
    }
  }

  const extensions: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(source.extensions)) {
    if (data[key] === undefined) continue;
    extensions[key] = data[key];
    // Paths a plug-in section names obey the same rule as the task file's own.
    const refused = new Set<string>();
    for (const ref of taskPathsOf(schema)?.(data[key]) ?? []) {
      const field = `${key}.${ref.field}`;
      // One problem per field (an ONNX model and the spec beside it share theirs).
      if (refused.has(field)) continue;
      const before = problems.length;
      await checked(ref.path, field, ref.kind ?? 'any', ref.optional !== true);
      if (problems.length > before) refused.add(field);
    }
  }

  let datasetFile: string | undefined;
  if (data.dataset) datasetFile = await mustExist(data.dataset.file, 'dataset.file', 'file');

  if (problems.length > 0) return { tasks: [], problems };

  const task: Task = {
    id: source.idPrefix + (data.id ?? path.basename(dir)),
    dir,
    format: 'paddock',
    instruction,
    ...(data.system_prompt !== undefined ? { systemPrompt: data.system_prompt } : {}),
    ...(environment ? { environment } : {}),
    tools,
    limits,
    ...(verifier ? { verifier } : {}),
    ...(solution ? { solution } : {}),
    metadata: { ...(data.metadata ?? {}) },
    extensions,
  };
  if (data.dataset && datasetFile !== undefined) {
    return expandDataset(task, {
      file: data.dataset.file,
      hostPath: datasetFile,
      ...(data.dataset.id_field !== undefined ? { idField: data.dataset.id_field } : {}),
    });
  }
  return { tasks: [task], problems: [] };
}
