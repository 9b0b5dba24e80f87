/**
 * The local ONNX policy agent (onnxruntime-node, in-process): policy folders, the
 * paddock-v1 chat template and tool-call syntax, the tokenizer and the sampler.
 */

/** The agent: samples turns from a policy and records them token-exactly. */
export { OnnxPolicyAgent, type OnnxAgentOptions } from './agent.ts';
/** A loaded policy folder (model.onnx, tokenizer.json, config.json) and its loader. */
export {
  OnnxPolicy,
  PolicyConfigSchema,
  loadOnnxPolicy,
  type LoadPolicyOptions,
  type PolicyConfig,
  type PolicyState,
} from './policy.ts';
/** The `onnx:<dir>` agent spec. */
export { createOnnxAgent, parseOnnxSpec, type OnnxSpec } from './spec.ts';
/** The chat template, the tool-call syntax and its parser. */
export {
  ChatTemplate,
  DEFAULT_SYSTEM_PROMPT,
  TOOL_CLOSE,
  TOOL_OPEN,
  parseCompletion,
  renderAssistantText,
  renderToolList,
  type ChatOptions,
  type ParsedCompletion,
} from './chat.ts';
/** The tokenizer (specials, bytes and pieces; greedy longest match). */
export {
  PieceTokenizer,
  SPECIAL_TOKENS,
  TokenizerFileSchema,
  buildPieceTokenizer,
  byteTokenizer,
  type BuildTokenizerOptions,
  type SpecialToken,
  type TokenizerFile,
} from './tokenizer.ts';
/** Sampling: temperature, top-p, seeded generator, log-probabilities. */
export {
  DEFAULT_SAMPLING,
  createRng,
  logSoftmax,
  mixSeed,
  sampleToken,
  type Rng,
  type SamplingOptions,
} from './sampler.ts';
