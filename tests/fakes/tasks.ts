/** Builds in-memory Task objects for unit tests. */
import type { Task } from '../../harness/index.ts';

export function makeTask(overrides: Partial<Task> = {}): Task {
  return {
    id: 'suite/task',
    dir: '/nonexistent/task',
    format: 'paddock',
    instruction: 'Do the thing.',
    environment: {
      image: 'paddock/base:bookworm',
      cpus: 1,
      memoryMb: 512,
      pids: 128,
      network: false,
      env: {},
      files: [],
    },
    tools: ['bash', 'read_file', 'write_file', 'edit_file', 'submit'],
    limits: { maxTurns: 10, timeoutMs: 10_000, commandTimeoutMs: 5_000 },
    verifier: {
      files: [{ hostPath: '/nonexistent/task/tests', sandboxPath: '/tests' }],
      command: 'bash /tests/test.sh',
      env: {},
      timeoutMs: 5_000,
      reward: { kind: 'files', dir: '/logs/verifier' },
    },
    metadata: {},
    extensions: {},
    ...overrides,
  };
}
