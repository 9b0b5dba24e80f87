/**
 * The endpoints through which an inference server takes a new policy, read from each
 * server's source (the versions checked are in trainers/rl/README.md, "Rollouts on an
 * inference server"):
 *
 * SGLang (python/sglang/srt/entrypoints/http_server.py, managers/io_struct.py,
 * managers/tokenizer_manager.py):
 * - `POST /update_weights_from_disk` `{model_path, weight_version}` → `{success, message,
 *   num_paused_requests}`, 400 on failure. It loads the folder's safetensors into the running
 *   model (same architecture; config and tokenizer are not re-read) after the requests in
 *   flight end. The served model name becomes the folder's path; the `model` field of chat
 *   requests is not checked against it.
 * - `POST /load_lora_adapter` `{lora_name, lora_path}` and `POST /unload_lora_adapter`
 *   `{lora_name}` → `{success, error_message, loaded_adapters}`, 400 on failure; the server
 *   needs `--enable-lora` (or `--lora-paths`), and without initial adapters
 *   `--max-lora-rank` and `--lora-target-modules`. A name loaded twice fails. Requests pick
 *   the adapter with `model: "<base>:<adapter>"`.
 * - `GET /health` (200 when ready), `GET /v1/models`.
 *
 * vLLM (vllm/entrypoints/serve/dev/rpc/api_router.py, serve/dev/rlhf/api_router.py,
 * serve/dev/cache/api_router.py, serve/lora/api_router.py, openai/models/serving.py,
 * v1/worker/gpu_model_runner.py):
 * - full weights have no stock "load this folder" route; the disk path is the development
 *   API, mounted only with `VLLM_SERVER_DEV_MODE=1`: `POST /pause?mode=wait` (drain),
 *   `POST /collective_rpc` `{method: "reload_weights", kwargs: {weights_path,
 *   is_checkpoint_format: true}}` (the workers stream the folder's safetensors into the
 *   running model), `POST /reset_prefix_cache`, `POST /update_weight_version`
 *   `{new_version}`, `POST /resume`;
 * - `POST /v1/load_lora_adapter` `{lora_name, lora_path}` and `/v1/unload_lora_adapter`
 *   `{lora_name}` (plain-text 200; JSON `{error: {message, type, code}}` otherwise), only
 *   with `VLLM_ALLOW_RUNTIME_LORA_UPDATING=true` and `--enable-lora --max-lora-rank R`;
 *   a name loaded twice is a 400 unless `load_inplace`. Requests pick it with
 *   `model: "<lora_name>"`.
 * - `GET /health` (200 when ready), `GET /v1/models`.
 */
import { describeError } from '../../harness/index.ts';
import { trainerError } from './errors.ts';

export interface ServerApi {
  /** The server's root URL, without a trailing slash. */
  readonly url: string;
  /** The readiness endpoint's path. */
  readonly healthPath: string;
  /** Whether the server answers its readiness endpoint with 200 (never rejects). */
  healthy(signal: AbortSignal): Promise<boolean>;
  /** The first model `/v1/models` lists (the base model). */
  firstModel(signal: AbortSignal): Promise<string>;
  /** Loads the full weights of the Hugging Face folder `dir` into the running server as `version`. */
  loadWeights(dir: string, version: number, signal: AbortSignal): Promise<void>;
  /** Loads the PEFT adapter folder `dir` as `name`. */
  loadAdapter(name: string, dir: string, signal: AbortSignal): Promise<void>;
  /** Unloads adapter `name`. */
  unloadAdapter(name: string, signal: AbortSignal): Promise<void>;
  /** The `model` of requests sampling from adapter `name` over base model `base`. */
  adapterModel(base: string, name: string): string;
}

/** How long one administrative call may take (a large model's weights load in minutes). */
const ADMIN_TIMEOUT_MS = 30 * 60_000;

interface Answer {
  status: number;
  text: string;
  json: unknown;
}

/** One HTTP call with its own deadline (a timer, not AbortSignal.timeout: see nodejs/node#57736). */
async function call(
  url: string,
  init: { method: 'GET' | 'POST'; body?: unknown; apiKey?: string | undefined; timeoutMs: number },
  signal: AbortSignal,
): Promise<Answer> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => controller.abort(), init.timeoutMs);
  try {
    const response = await fetch(url, {
      method: init.method,
      headers: {
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(init.apiKey ? { authorization: `Bearer ${init.apiKey}` } : {}),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      signal: controller.signal,
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, text, json };
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}

/** The error message a server put in its answer, as far as it can be told. */
function messageOf(answer: Answer): string {
  const body = answer.json as Record<string, unknown> | undefined;
  const nested = body?.error as Record<string, unknown> | undefined;
  const message = [body?.message, body?.error_message, nested?.message].find((m) => typeof m === 'string');
  return (typeof message === 'string' ? message : answer.text).slice(0, 2000);
}

export function serverApi(kind: 'vllm' | 'sglang', rootUrl: string, apiKey?: string): ServerApi {
  const url = rootUrl.replace(/\/+$/, '');
  const post = async (path: string, body: unknown, signal: AbortSignal, what: string): Promise<Answer> => {
    let answer: Answer;
    try {
      answer = await call(
        `${url}${path}`,
        { method: 'POST', body, apiKey, timeoutMs: ADMIN_TIMEOUT_MS },
        signal,
      );
    } catch (error) {
      throw trainerError(`${what}: POST ${url}${path} failed: ${describeError(error)}`, { cause: error });
    }
    if (answer.status === 404 && kind === 'vllm' && !path.startsWith('/v1/')) {
      throw trainerError(
        `${what}: vLLM does not serve POST ${path} (404): its development API is mounted only when the server runs with VLLM_SERVER_DEV_MODE=1`,
      );
    }
    if (
      answer.status === 404 &&
      kind === 'vllm' &&
      path.includes('lora_adapter') &&
      answer.json === undefined
    ) {
      throw trainerError(
        `${what}: vLLM does not serve POST ${path} (404): start it with VLLM_ALLOW_RUNTIME_LORA_UPDATING=true and --enable-lora`,
      );
    }
    const failed =
      answer.status >= 400 ||
      (kind === 'sglang' && (answer.json as { success?: unknown } | undefined)?.success === false);
    if (failed) throw trainerError(`${what}: the server answered ${answer.status}: ${messageOf(answer)}`);
    return answer;
  };
  const name = kind === 'vllm' ? 'vLLM' : 'SGLang';
  // The LoRA routes: vLLM's under /v1, SGLang's at the root; the bodies are the same.
  const lora = kind === 'vllm' ? '/v1' : '';
  const common = {
    url,
    healthPath: '/health',
    async healthy(signal: AbortSignal): Promise<boolean> {
      try {
        return (
          (await call(`${url}/health`, { method: 'GET', apiKey, timeoutMs: 10_000 }, signal)).status === 200
        );
      } catch {
        return false;
      }
    },
    async firstModel(signal: AbortSignal): Promise<string> {
      let answer: Answer;
      try {
        answer = await call(`${url}/v1/models`, { method: 'GET', apiKey, timeoutMs: 30_000 }, signal);
      } catch (error) {
        throw trainerError(`cannot list the models of ${url}: ${describeError(error)}`, { cause: error });
      }
      const id = (answer.json as { data?: { id?: unknown }[] } | undefined)?.data?.[0]?.id;
      if (answer.status !== 200 || typeof id !== 'string') {
        throw trainerError(
          `${url}/v1/models answered ${answer.status} without a model id (set rollout.server.model): ${messageOf(answer)}`,
        );
      }
      return id;
    },
    async loadAdapter(adapter: string, dir: string, signal: AbortSignal): Promise<void> {
      await post(
        `${lora}/load_lora_adapter`,
        { lora_name: adapter, lora_path: dir },
        signal,
        `loading adapter ${adapter} into ${name}`,
      );
    },
    async unloadAdapter(adapter: string, signal: AbortSignal): Promise<void> {
      await post(
        `${lora}/unload_lora_adapter`,
        { lora_name: adapter },
        signal,
        `unloading adapter ${adapter} from ${name}`,
      );
    },
  };
  if (kind === 'sglang') {
    return {
      ...common,
      async loadWeights(dir, version, signal) {
        await post(
          '/update_weights_from_disk',
          { model_path: dir, weight_version: String(version) },
          signal,
          `loading the weights of version ${version} into SGLang`,
        );
      },
      adapterModel: (base, adapter) => `${base}:${adapter}`,
    };
  }
  return {
    ...common,
    async loadWeights(dir, version, signal) {
      const what = `loading the weights of version ${version} into vLLM`;
      await post('/pause?mode=wait', undefined, signal, what);
      try {
        await post(
          '/collective_rpc',
          { method: 'reload_weights', kwargs: { weights_path: dir, is_checkpoint_format: true } },
          signal,
          what,
        );
        await post('/reset_prefix_cache', undefined, signal, what);
        await post('/update_weight_version', { new_version: String(version) }, signal, what);
      } finally {
        await post('/resume', undefined, signal, `resuming vLLM after ${what}`);
      }
    },
    adapterModel: (_base, adapter) => adapter,
  };
}
