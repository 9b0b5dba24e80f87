import { z } from 'zod';
import { defineTool, type Tool } from '../tool.ts';

/** `submit`: ends the agent's part of the episode, optionally with a final answer. */
export const submitTool: Tool = defineTool({
  name: 'submit',
  description: 'Call this when the task is done. Give your final answer if the task asks for one.',
  args: z
    .object({ answer: z.string().optional().describe('Your final answer, if the task asks for one.') })
    .strict(),
  async execute(args) {
    return {
      text: 'Submitted.',
      stop: true,
      ...(args.answer === undefined ? {} : { answer: args.answer }),
    };
  },
});
