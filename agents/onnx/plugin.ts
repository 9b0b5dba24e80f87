/** The ONNX plug-in: the `onnx:<policy-dir>[?temperature=…]` agent kind, a local policy (e.g. one `paddock train` wrote). */
import type { PaddockPlugin } from '../../harness/index.ts';
import { createOnnxAgent } from './spec.ts';

export const onnxPlugin: PaddockPlugin = {
  name: 'onnx',
  agents: {
    onnx: {
      usage: 'onnx:<policy-dir>[?temperature=…]',
      needsArgument: true,
      create: (_dir, { spec }) => createOnnxAgent(spec),
    },
  },
};
