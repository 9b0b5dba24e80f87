/**
 * Conversion of paddock's conversation and tools to the OpenAI chat-completions shape —
 * used for requests by {@link OpenAIAgent} and for training exports.
 */
import type { ImagePart, Message, ToolSpec } from './index.ts';

/** A content part of a user message. */
export type OpenAIContentPart =
  { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

/** A chat-completions message, as the API takes it. */
export type OpenAIMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string | OpenAIContentPart[] }
  | {
      role: 'assistant';
      content: string | null;
      tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
      /** The turn's reasoning, for DeepSeek, SGLang, vLLM (either name) and Qwen3-style templates. */
      reasoning_content?: string;
      /** The same under vLLM's current and OpenRouter's name. */
      reasoning?: string;
    }
  | { role: 'tool'; tool_call_id: string; content: string };

/** A chat-completions tool. */
export interface OpenAITool {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

/** A `data:` URL for an image part. */
export function imageDataUrl(image: ImagePart): string {
  return `data:${image.mimeType};base64,${image.dataBase64}`;
}

/** An image as an `image_url` part with a `data:` URL. */
function dataUrlPart(image: ImagePart): OpenAIContentPart {
  return { type: 'image_url', image_url: { url: imageDataUrl(image) } };
}

/** Options of {@link toOpenAIMessages}. */
export interface OpenAIMessageOptions {
  /** Where an assistant message's reasoning goes; left out with `none` (the default). */
  reasoningField?: 'reasoning_content' | 'reasoning' | 'none';
}

/**
 * Converts paddock messages to chat-completions messages, keeping their order: an
 * assistant message's `tool_calls` are followed directly by one `tool` message per call
 * (with its `tool_call_id`), as the API requires. Tool messages cannot carry images, so
 * the images of a run of tool results follow it in one user message that names the calls
 * they came from. An assistant message with neither text nor calls gets `content: ''`
 * (the API refuses `null` there).
 *
 * `reasoningField` says where an assistant message's reasoning goes (`reasoning_content`,
 * `reasoning`); with `none` (the default) it is left out. Images become `image_url` parts
 * with `data:` URLs, or what `imagePart` makes of them (the export's file paths; messages
 * of records read back, whose images may be files of the run, need it). The parts come
 * out in the order of the images in `messages`.
 */
export function toOpenAIMessages(
  messages: readonly Message[],
  options?: OpenAIMessageOptions,
): OpenAIMessage[];
export function toOpenAIMessages<Image>(
  messages: readonly Message<Image>[],
  options: OpenAIMessageOptions & { imagePart: (image: Image) => OpenAIContentPart },
): OpenAIMessage[];
export function toOpenAIMessages<Image>(
  messages: readonly Message<Image>[],
  options: OpenAIMessageOptions & { imagePart?: (image: Image) => OpenAIContentPart } = {},
): OpenAIMessage[] {
  const reasoningField = options.reasoningField ?? 'none';
  const imagePart = options.imagePart ?? (dataUrlPart as unknown as (image: Image) => OpenAIContentPart);
  const userContent = (text: string, images: readonly Image[] | undefined): string | OpenAIContentPart[] => {
    if (!images || images.length === 0) return text;
    return [...(text === '' ? [] : [{ type: 'text' as const, text }]), ...images.map(imagePart)];
  };
  const out: OpenAIMessage[] = [];
  let pendingImages: { callId: string; name: string; images: Image[] }[] = [];
  const flushImages = (): void => {
    if (pendingImages.length === 0) return;
    const parts: OpenAIContentPart[] = [];
    for (const entry of pendingImages) {
      parts.push({ type: 'text', text: `Images from the result of ${entry.name} (${entry.callId}):` });
      for (const image of entry.images) parts.push(imagePart(image));
    }
    out.push({ role: 'user', content: parts });
    pendingImages = [];
  };
  for (const message of messages) {
    if (message.role !== 'tool') flushImages();
    switch (message.role) {
      case 'system':
        out.push({ role: 'system', content: message.content });
        break;
      case 'user':
        out.push({ role: 'user', content: userContent(message.content, message.images) });
        break;
      case 'assistant': {
        const calls = message.toolCalls ?? [];
        const assistant: OpenAIMessage =
          calls.length === 0
            ? { role: 'assistant', content: message.content ?? '' }
            : {
                role: 'assistant',
                content: message.content,
                tool_calls: calls.map((call) => ({
                  id: call.id,
                  type: 'function' as const,
                  function: { name: call.name, arguments: call.arguments },
                })),
              };
        if (reasoningField !== 'none' && message.reasoning)
          assistant[reasoningField] = message.reasoning.text;
        out.push(assistant);
        break;
      }
      case 'tool':
        out.push({ role: 'tool', tool_call_id: message.toolCallId, content: message.content });
        if (message.images && message.images.length > 0) {
          pendingImages.push({ callId: message.toolCallId, name: message.name, images: message.images });
        }
        break;
    }
  }
  flushImages();
  return out;
}

/** Converts tool specs to chat-completions `tools`. */
export function toOpenAITools(tools: readonly ToolSpec[]): OpenAITool[] {
  return tools.map((tool) => ({
    type: 'function',
    function: { name: tool.name, description: tool.description, parameters: tool.inputSchema },
  }));
}
