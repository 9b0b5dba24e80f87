import type { BuiltinToolName, Task } from '../task.ts';
import type { Tool } from '../tool.ts';
import { bashTool, editFileTool, readFileTool, writeFileTool } from './sandbox-tools.ts';
import { submitTool } from './submit.ts';

export {
  bashTool,
  editFileTool,
  formatExecResult,
  /** True for a file fault the agent caused (an observation), false for a sandbox fault. */
  isAgentFileFault,
  readFileTool,
  writeFileTool,
} from './sandbox-tools.ts';
export { submitTool } from './submit.ts';

/** The built-in tools a task asks for, in the task's order. Sandbox tools are left out when it has no sandbox. */
export function builtinTools(task: Task): Tool[] {
  const byName: Record<BuiltinToolName, Tool> = {
    bash: bashTool(task.limits.commandTimeoutMs),
    read_file: readFileTool,
    write_file: writeFileTool,
    edit_file: editFileTool,
    submit: submitTool,
  };
  return task.tools
    .filter((name) => name === 'submit' || task.environment !== undefined)
    .map((name) => byName[name]);
}
