/**
 * The ONNX plug-in: the `onnx:<policy-dir>[?temperature=…]` agent kind, a local policy
 * (e.g. one `paddock train` wrote). onnxruntime-node is imported when such an agent is
 * made, not when the plug-in is registered.
 */
import type { PaddockPlugin } from '../../harness/index.ts';

export const onnxPlugin: PaddockPlugin = {
  name: 'onnx',
  agents: {
    onnx: {
      usage: 'onnx:<policy-dir>[?temperature=…]',
      needsArgument: true,
      create: async (_dir, { spec }) => (await import('./spec.ts')).createOnnxAgent(spec),
    },
  },
};
