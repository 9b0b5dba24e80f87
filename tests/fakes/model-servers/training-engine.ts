/**
 * A loopback inference server for training runs: vLLM- or SGLang-shaped chat completions
 * (vllm.ts, sglang.ts) over a real Hugging Face folder's tokenizer and chat template, and
 * the endpoints through which each server takes a new policy, with the checks the real ones
 * make. Built from the servers' source:
 *
 * SGLang — python/sglang/srt/entrypoints/http_server.py, managers/io_struct.py,
 * managers/tokenizer_manager.py, model_executor/model_runner.py:
 * - `POST /update_weights_from_disk` {model_path, load_format?, abort_all_requests?,
 *   weight_version?, flush_cache?…}: a missing `model_path` is a 400 validation error; a
 *   folder that cannot be loaded into the running model (no safetensors, another
 *   architecture or shape) is 400 `{success: false, message: "Failed to update weights: …"}`;
 *   success is `{success: true, message, num_paused_requests}` and the served model name
 *   becomes the folder's path.
 * - `POST /load_lora_adapter` {lora_name, lora_path} / `POST /unload_lora_adapter`
 *   {lora_name}: `{success, error_message, loaded_adapters}`, 400 when LoRA is not enabled
 *   ("LoRA is not enabled. Please set --enable-lora to enable LoRA."), the name is loaded
 *   already, the folder is not a PEFT adapter, its rank exceeds --max-lora-rank; requests
 *   name the adapter as `model: "<base>:<adapter>"`, one never loaded is a 400.
 * - `GET /health`, `GET /v1/models` (the adapters listed with their `parent`).
 *
 * vLLM — vllm/entrypoints/serve/dev/{rpc,rlhf,cache}/api_router.py (mounted only with
 * VLLM_SERVER_DEV_MODE=1: 404 otherwise), serve/lora/api_router.py (only with
 * VLLM_ALLOW_RUNTIME_LORA_UPDATING), openai/models/serving.py, v1/worker/gpu_model_runner.py:
 * - `POST /pause?mode=wait` → {status: "paused"}; `POST /resume` → {status: "resumed"};
 *   `POST /collective_rpc` {method, args?, kwargs?, timeout?} (no `method`: 400 "Missing
 *   'method'"); `reload_weights` with kwargs {weights_path, is_checkpoint_format} streams
 *   the folder's weights into the running model (same architecture); `POST
 *   /reset_prefix_cache`; `POST /update_weight_version` {new_version}.
 * - `POST /v1/load_lora_adapter` {lora_name, lora_path, load_inplace?}: plain-text
 *   "Success: LoRA adapter '<name>' added successfully."; a name loaded already without
 *   `load_inplace` is a 400; `POST /v1/unload_lora_adapter` {lora_name}: unknown → 404.
 * - A request whose `model` is neither the served name nor a loaded adapter: 404 "The
 *   model `<name>` does not exist."
 *
 * "Sampling" is the test's `reply` (the assistant's text for the conversation), tokenised
 * with the folder's tokenizer and ended with the template's end token; each token's
 * logprob is `logprob`. Every chat request is logged with the weights and adapter that
 * served it.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HfChatTemplate, HfTokenizer } from '../../../agents/onnx/index.ts';
import type { Message } from '../../../harness/index.ts';
import type { RecordedRequest, ScriptedResponse } from './scripted-server.ts';
import { startSglangServer } from './sglang.ts';
import { errorBody, type TemplateServer } from './template-server.ts';
import { startVllmServer } from './vllm.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- wire messages are read loosely, as servers do
type WireMessage = Record<string, any>;

export interface TrainingEngineOptions {
  flavour: 'vllm' | 'sglang';
  /** The Hugging Face folder it starts with (`--model`): its tokenizer, template and config. */
  modelDir: string;
  /** The served model name. @default the folder's path (as both servers name it) */
  servedName?: string;
  /** The assistant's text for a conversation (the template's own tool-call format). */
  reply: (messages: readonly WireMessage[]) => string;
  /** Each sampled token's logprob. @default -0.5 */
  logprob?: number;
  /** vLLM: VLLM_SERVER_DEV_MODE=1. @default true */
  devMode?: boolean;
  /** vLLM: VLLM_ALLOW_RUNTIME_LORA_UPDATING and --enable-lora; SGLang: --enable-lora. @default false */
  lora?: boolean;
  /** --max-lora-rank. @default 16 */
  maxLoraRank?: number;
  /** Delay of every model call's answer, in ms. @default 0 */
  latencyMs?: number;
  /** The port to listen on. @default a free one */
  port?: number;
}

/** What loaded into the engine, in order. */
export type EngineLoad =
  | { kind: 'weights'; path: string; version?: string }
  | { kind: 'adapter'; name: string; path: string }
  | { kind: 'unload'; name: string };

export interface TrainingEngine extends TemplateServer {
  /** Every weight and adapter load and unload, in order. */
  readonly loads: EngineLoad[];
  /** Each chat request: the weights folder and version, and the adapter, that served it. */
  readonly served: { weights: string; version: string | undefined; adapter: string | undefined }[];
}

/** The config fields a folder's weights must share with the running model to load into it. */
const SHAPE = [
  'model_type',
  'vocab_size',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'tie_word_embeddings',
] as const;

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

/** Why `dir` cannot load into a model of `config`, or undefined when it can. */
function weightsProblem(dir: string, config: Record<string, unknown>): string | undefined {
  if (!existsSync(dir)) return `${dir} does not exist`;
  if (!existsSync(join(dir, 'config.json'))) return `no config.json in ${dir}`;
  if (!readdirSync(dir).some((file) => file.endsWith('.safetensors'))) return `no *.safetensors in ${dir}`;
  const other = readJson(join(dir, 'config.json'));
  for (const key of SHAPE) {
    if (other[key] !== config[key])
      return `${key} is ${String(other[key])} in ${dir}, ${String(config[key])} in the running model`;
  }
  return undefined;
}

/** Why `dir` is not a PEFT adapter this server can load, or undefined. */
function adapterProblem(dir: string, maxRank: number): string | undefined {
  const file = join(dir, 'adapter_config.json');
  if (!existsSync(file)) return `no adapter_config.json in ${dir}`;
  if (!existsSync(join(dir, 'adapter_model.safetensors'))) return `no adapter_model.safetensors in ${dir}`;
  const config = readJson(file);
  if (typeof config.r !== 'number' || config.r > maxRank)
    return `LoRA rank ${String(config.r)} is greater than max_lora_rank ${maxRank}`;
  return undefined;
}

/** OpenAI wire messages as the harness's, to render them with the folder's template. */
function harnessMessages(messages: readonly WireMessage[]): Message[] {
  return messages.map((m): Message => {
    if (m.role === 'tool') {
      return {
        role: 'tool',
        content: String(m.content),
        toolCallId: String(m.tool_call_id),
        name: String(m.name ?? ''),
      };
    }
    if (m.role === 'assistant') {
      const calls = (m.tool_calls ?? []) as { id: string; function: { name: string; arguments: string } }[];
      return {
        role: 'assistant',
        content: (m.content as string | null) ?? null,
        ...(calls.length > 0
          ? {
              toolCalls: calls.map((call) => ({
                id: call.id,
                name: call.function.name,
                arguments: call.function.arguments,
              })),
            }
          : {}),
      };
    }
    const content = Array.isArray(m.content)
      ? (m.content as { text?: string }[]).map((part) => part.text ?? '').join('')
      : String(m.content);
    return { role: m.role as 'user' | 'system', content };
  });
}

const json = (body: unknown, status = 200): ScriptedResponse => ({ status, json: body });
const text = (body: string, status = 200): ScriptedResponse => ({ status, raw: body });

export async function startTrainingEngine(options: TrainingEngineOptions): Promise<TrainingEngine> {
  // The folder is read when first needed: a training run writes a new model's folder
  // after the engine has started listening.
  let model:
    { tokenizer: HfTokenizer; template: HfChatTemplate; config: Record<string, unknown> } | undefined;
  const loaded = (): NonNullable<typeof model> => {
    if (!model) {
      const tokenizer = HfTokenizer.fromDir(options.modelDir);
      model = {
        tokenizer,
        template: new HfChatTemplate(tokenizer),
        config: readJson(join(options.modelDir, 'config.json')),
      };
    }
    return model;
  };
  const logprob = options.logprob ?? -0.5;
  const maxRank = options.maxLoraRank ?? 16;
  const devMode = options.devMode ?? true;
  const loads: EngineLoad[] = [];
  const served: TrainingEngine['served'] = [];
  const adapters = new Map<string, string>();
  let weights = options.modelDir;
  let version: string | undefined;
  let servedName = options.servedName ?? options.modelDir;

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request bodies are read loosely
  const bodyOf = (request: RecordedRequest): Record<string, any> =>
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- idem
    (typeof request.body === 'object' && request.body !== null ? request.body : {}) as Record<string, any>;

  /** The adapter a chat request names, or the error the server gives. */
  const adapterOf = (model: unknown): { adapter?: string } | ScriptedResponse => {
    const name = typeof model === 'string' ? model : '';
    if (options.flavour === 'vllm') {
      if (name === servedName) return {};
      if (adapters.has(name)) return { adapter: name };
      return errorBody(404, `The model \`${name}\` does not exist.`, 'NotFoundError');
    }
    const colon = name.indexOf(':');
    if (colon < 0) return {};
    const adapter = name.slice(colon + 1);
    if (!options.lora)
      return errorBody(
        400,
        `LoRA adapter '${adapter}' was requested, but LoRA is not enabled. Please launch the server with --enable-lora.`,
      );
    if (!adapters.has(adapter))
      return errorBody(400, `Got LoRA adapter that has never been loaded: ${adapter}`);
    return { adapter };
  };

  const sglangRoutes = (request: RecordedRequest): ScriptedResponse | undefined => {
    const body = bodyOf(request);
    switch (request.path) {
      case '/update_weights_from_disk': {
        if (typeof body.model_path !== 'string')
          return json(
            { object: 'error', message: 'model_path: Field required', type: 'Bad Request', code: 400 },
            400,
          );
        const problem = weightsProblem(body.model_path, loaded().config);
        if (problem)
          return json(
            {
              success: false,
              message: `Failed to update weights: ${problem}. Rolling back to original weights.`,
            },
            400,
          );
        weights = body.model_path;
        servedName = body.model_path;
        version = body.weight_version ?? version;
        loads.push({
          kind: 'weights',
          path: weights,
          ...(body.weight_version ? { version: body.weight_version } : {}),
        });
        return json({ success: true, message: 'Succeeded to update model weights.', num_paused_requests: 0 });
      }
      case '/load_lora_adapter':
      case '/unload_lora_adapter': {
        const fail = (message: string): ScriptedResponse =>
          json({ success: false, error_message: message, loaded_adapters: null }, 400);
        if (!options.lora) return fail('LoRA is not enabled. Please set --enable-lora to enable LoRA.');
        if (typeof body.lora_name !== 'string') return fail('lora_name: Field required');
        if (request.path === '/unload_lora_adapter') {
          if (!adapters.delete(body.lora_name)) return fail(`LoRA adapter ${body.lora_name} is not loaded.`);
          loads.push({ kind: 'unload', name: body.lora_name });
        } else {
          if (typeof body.lora_path !== 'string') return fail('lora_path: Field required');
          if (adapters.has(body.lora_name))
            return fail(
              `The LoRA adapter name ${body.lora_name} is already loaded: ${adapters.get(body.lora_name)}`,
            );
          const problem = adapterProblem(body.lora_path, maxRank);
          if (problem) return fail(problem);
          adapters.set(body.lora_name, body.lora_path);
          loads.push({ kind: 'adapter', name: body.lora_name, path: body.lora_path });
        }
        return json({ success: true, error_message: null, loaded_adapters: Object.fromEntries(adapters) });
      }
      default:
        return undefined;
    }
  };

  let paused = false;
  const vllmRoutes = (request: RecordedRequest): ScriptedResponse | undefined => {
    const body = bodyOf(request);
    const path = request.path.split('?')[0]!;
    const dev = ['/pause', '/resume', '/collective_rpc', '/reset_prefix_cache', '/update_weight_version'];
    if (dev.includes(path) && !devMode) return json({ detail: 'Not Found' }, 404);
    switch (path) {
      case '/pause':
        paused = true;
        return json({ status: 'paused' });
      case '/resume':
        paused = false;
        return json({ status: 'resumed' });
      case '/reset_prefix_cache':
        return text('');
      case '/update_weight_version':
        if (typeof body.new_version !== 'string') return json({ error: 'new_version is required' }, 400);
        version = body.new_version;
        return json({ success: true, new_version: version });
      case '/collective_rpc': {
        if (typeof body.method !== 'string') return json({ error: "Missing 'method' in request body" }, 400);
        if (body.method !== 'reload_weights') return json({ error: `unknown method ${body.method}` }, 500);
        const dir = body.kwargs?.weights_path ?? weights;
        const problem = weightsProblem(String(dir), loaded().config);
        if (problem) return json({ error: `reload_weights failed: ${problem}` }, 500);
        weights = String(dir);
        loads.push({ kind: 'weights', path: weights });
        return json({ results: [null] });
      }
      case '/v1/load_lora_adapter':
      case '/v1/unload_lora_adapter': {
        if (!options.lora) return json({ detail: 'Not Found' }, 404);
        const error = (message: string, status: number, type: string): ScriptedResponse =>
          json({ error: { message, type, code: status } }, status);
        if (!body.lora_name)
          return error('Both lora_name and lora_path must be provided.', 400, 'InvalidUserInput');
        if (path === '/v1/unload_lora_adapter') {
          if (!adapters.delete(body.lora_name))
            return error(`The lora adapter '${body.lora_name}' cannot be found.`, 404, 'NotFoundError');
          loads.push({ kind: 'unload', name: body.lora_name });
          return text(`Success: LoRA adapter '${body.lora_name}' removed successfully.`);
        }
        if (!body.lora_path)
          return error('Both lora_name and lora_path must be provided.', 400, 'InvalidUserInput');
        if (adapters.has(body.lora_name) && !body.load_inplace) {
          return error(
            `The lora adapter '${body.lora_name}' has already been loaded. If you want to load the adapter in place, set 'load_inplace' to True.`,
            400,
            'InvalidUserInput',
          );
        }
        const problem = adapterProblem(body.lora_path, maxRank);
        if (problem) return error(problem, 400, 'BadRequestError');
        adapters.set(body.lora_name, body.lora_path);
        loads.push({ kind: 'adapter', name: body.lora_name, path: body.lora_path });
        return text(`Success: LoRA adapter '${body.lora_name}' added successfully.`);
      }
      default:
        return undefined;
    }
  };

  const routes = (request: RecordedRequest): ScriptedResponse | undefined => {
    const path = request.path.split('?')[0]!;
    if (request.method === 'GET' && path === '/health') return text('');
    if (request.method === 'GET' && path === '/v1/models') {
      return json({
        object: 'list',
        data: [
          { id: servedName, object: 'model', root: weights, parent: null },
          ...[...adapters].map(([name, root]) => ({ id: name, object: 'model', root, parent: servedName })),
        ],
      });
    }
    const admin = options.flavour === 'vllm' ? vllmRoutes(request) : sglangRoutes(request);
    if (admin) return admin;
    if (path === '/v1/chat/completions' || path === '/v1/completions') {
      if (paused) return errorBody(503, 'the engine is paused', 'ServiceUnavailableError');
      const chosen = adapterOf(bodyOf(request).model);
      if ('json' in chosen) return chosen;
      served.push({ weights, version, adapter: 'adapter' in chosen ? chosen.adapter : undefined });
    }
    return undefined;
  };

  // The flavour renders a request's messages, then samples after them (in the same tick);
  // the reply function reads the messages of the request being answered.
  let conversation: readonly WireMessage[] = [];
  const engine = {
    renderIds(messages: WireMessage[], _reasoningKey: string, addGenerationPrompt = true): number[] {
      const { tokenizer, template } = loaded();
      return tokenizer.encodeWithSpecials(
        template.renderText(harnessMessages(messages), [], { addGenerationPrompt }),
      );
    },
    sample() {
      const { tokenizer, template } = loaded();
      const reply = options.reply(conversation);
      const ids = [...tokenizer.encodeWithSpecials(reply), template.end];
      return { ids, logprobs: ids.map(() => logprob), finish: 'stop' as const, text: reply };
    },
  };
  const start = options.flavour === 'vllm' ? startVllmServer : startSglangServer;
  const server = await start({
    turns: [],
    engine,
    routes: (request) => {
      const answer = routes(request);
      if (answer === undefined && Array.isArray(bodyOf(request).messages))
        conversation = bodyOf(request).messages;
      return answer;
    },
    latencyMs: options.latencyMs ?? 0,
    ...(options.port === undefined ? {} : { port: options.port }),
  });
  return Object.assign(server, { loads, served });
}

/** The toy suite's oracle in the scratch template's tool-call format: look up, add, submit. */
export function toyReply(messages: readonly WireMessage[]): string {
  const call = (name: string, args: Record<string, string>): string =>
    `<tool_call>${JSON.stringify({ name, arguments: args })}</tool_call>`;
  const user = String(messages.find((m) => m.role === 'user')?.content ?? '');
  const tools = messages.filter((m) => m.role === 'tool').map((m) => String(m.content));
  if (tools.length === 0) return call('lookup', { key: /"(\w+)"/.exec(user)?.[1] ?? 'k0' });
  if (tools.length === 1) {
    const value = /=\s*(-?\d+)/.exec(tools[0]!)?.[1] ?? '0';
    const add = /add (\d+)/.exec(user)?.[1] ?? '0';
    return call('calc', { expression: `${value} + ${add}` });
  }
  return call('submit', { answer: tools[1]!.trim() });
}
