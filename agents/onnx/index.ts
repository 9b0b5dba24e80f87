/**
 * The local ONNX policy agent (onnxruntime-node, in-process): policy folders, the
 * paddock-v1 chat template and tool-call syntax, the tokenizer and the sampler.
 *
 * It implements the harness's policy contract (harness/policy.ts): `PieceTokenizer` is a
 * Tokenizer, `PaddockChatTemplate` a ChatTemplate, `onnxPolicyFormat` the PolicyFormat a
 * trainer writes folders with and this agent loads them by; `HfTokenizer`, `HfChatTemplate`
 * and `hfOnnxPolicyFormat(source)` do the same for a Hugging Face model's own files.
 */

/** The agent: samples turns from a policy and records them token-exactly. */
export { OnnxPolicyAgent, type OnnxAgentOptions } from './agent.ts';
/**
 * A policy folder (model.onnx, tokenizer.json, config.json): its format, writer and loader;
 * `hfOnnxPolicyFormat` for a model with its own Hugging Face tokenizer and chat template.
 */
export {
  HF_POLICY_TOKENIZER_FILES,
  OnnxPolicy,
  POLICY_FILES,
  PolicyConfigSchema,
  loadOnnxPolicy,
  hfOnnxPolicyFormat,
  onnxPolicyFormat,
  writeHfOnnxPolicyFolder,
  writeOnnxPolicyFolder,
  type LoadPolicyOptions,
  type PolicyConfig,
  type PolicyState,
} from './policy.ts';
/** The `onnx:<dir>` agent spec. */
export { createOnnxAgent, parseOnnxSpec, type OnnxSpec } from './spec.ts';
/** The chat template, the tool-call syntax and its parser. */
export {
  DEFAULT_SYSTEM_PROMPT,
  PADDOCK_TEMPLATE,
  PaddockChatTemplate,
  TOOL_CLOSE,
  TOOL_OPEN,
  parseCompletion,
  renderAssistantText,
  renderToolList,
  type ChatOptions,
} from './chat.ts';
/** The tokenizer (specials, bytes and pieces; greedy longest match) and its vocabulary builders. */
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
export {
  TOOL_CALL_PIECES,
  buildPolicyTokenizer,
  type PolicyTokenizerOptions,
  type PolicyTokenizerSample,
} from './vocabulary.ts';
/** A pretrained model's own tokenizer (tokenizer.json, tokenizer_config.json) and chat template. */
export {
  HF_TOKENIZER_FILES,
  HfGenerationConfigSchema,
  HfTokenizer,
  HfTokenizerConfigSchema,
  HfTokenizerJsonSchema,
  type HfSpecialTokens,
  type HfTokenizerFiles,
  type HfTokenizerOptions,
} from './hf-tokenizer.ts';
export {
  HfChatTemplate,
  TOOL_CALL_FORMATS,
  detectToolCallFormat,
  mistralCallId,
  type HfChatTemplateOptions,
  type HfParsedCompletion,
  type RenderTextOptions,
  type TemplateMessage,
  type ToolCallFormat,
} from './hf-chat-template.ts';
/** The tokenizer and chat template of a model trained from scratch, in Hugging Face's formats. */
export {
  SCRATCH_CHAT_TEMPLATE,
  SCRATCH_SPECIAL_TOKENS,
  scratchTokenizerFiles,
  trainByteLevelBpe,
  type ByteLevelBpeJson,
  type ByteLevelBpeOptions,
  type ScratchTokenizerOptions,
  type ScratchTokenizerSample,
} from './scratch-tokenizer.ts';
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

/** The plug-in that registers this folder with `createPaddock`. */
export { onnxPlugin } from './plugin.ts';
