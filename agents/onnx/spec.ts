/**
 * The agent spec `onnx:<dir>[?temperature=…&top_p=…&max_new_tokens=…]`: a local ONNX
 * policy folder, with optional sampling settings (defaults come from the folder's
 * config.json).
 */
import { ERROR_CODES, PaddockError } from '../../harness/index.ts';
import { OnnxPolicyAgent, type OnnxAgentOptions } from './agent.ts';
import { loadOnnxPolicy } from './policy.ts';

export interface OnnxSpec {
  /** The policy folder. */
  dir: string;
  options: Pick<OnnxAgentOptions, 'temperature' | 'topP' | 'maxNewTokens'>;
}

const QUERY_KEYS = { temperature: 'temperature', top_p: 'topP', max_new_tokens: 'maxNewTokens' } as const;

/** Parses an `onnx:` spec. Throws CONFIG_INVALID naming the bad part. */
export function parseOnnxSpec(spec: string): OnnxSpec {
  if (!spec.startsWith('onnx:') || spec.length === 'onnx:'.length) {
    throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `"${spec}" is not an onnx:<dir> agent spec`);
  }
  const body = spec.slice('onnx:'.length);
  const question = body.lastIndexOf('?');
  const dir = question < 0 ? body : body.slice(0, question);
  const options: OnnxSpec['options'] = {};
  if (question >= 0) {
    for (const [key, value] of new URLSearchParams(body.slice(question + 1))) {
      const field = QUERY_KEYS[key as keyof typeof QUERY_KEYS];
      const number = Number(value);
      if (!field) {
        throw new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          `${spec}: unknown option "${key}"; expected ${Object.keys(QUERY_KEYS).join(', ')}`,
        );
      }
      const valid =
        value.trim() !== '' &&
        Number.isFinite(number) &&
        (field === 'temperature'
          ? number >= 0
          : field === 'topP'
            ? number > 0 && number <= 1
            : Number.isInteger(number) && number > 0);
      if (!valid) throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${spec}: invalid ${key} "${value}"`);
      options[field] = number;
    }
  }
  if (dir === '') throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${spec}: the policy folder is missing`);
  return { dir, options };
}

/** Creates the agent an `onnx:` spec names; the agent owns (and closes) its policy. */
export async function createOnnxAgent(spec: string): Promise<OnnxPolicyAgent> {
  const { dir, options } = parseOnnxSpec(spec);
  const policy = await loadOnnxPolicy(dir);
  return new OnnxPolicyAgent(policy, { ...options, name: spec, ownsPolicy: true });
}
