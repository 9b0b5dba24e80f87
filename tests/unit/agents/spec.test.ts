import { describe, expect, it } from 'vitest';
import { AnthropicAgent } from '../../../agents/anthropic/index.ts';
import { OpenAIAgent, isModelAgentSpec, parseModelAgentSpec } from '../../../agents/openai/index.ts';
import { isPaddockError } from '../../../harness/index.ts';

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isPaddockError(error, 'CONFIG_INVALID')) return error.message;
    throw error;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('parseModelAgentSpec', () => {
  it('makes an OpenAI agent with base URL and key from the environment', () => {
    const agent = parseModelAgentSpec('openai:gpt-4.1-mini', { OPENAI_API_KEY: 'sk-x' });
    expect(agent).toBeInstanceOf(OpenAIAgent);
    expect(agent.name).toBe('openai:gpt-4.1-mini');
    expect((agent as OpenAIAgent).baseUrl).toBe('https://api.openai.com/v1');
  });

  it('keeps colons in the model name and reads options', () => {
    const agent = parseModelAgentSpec(
      'openai:qwen2.5:7b?temperature=0.5&token_exact=true&max_tokens=64&seed=9',
      {
        OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1',
      },
    ) as OpenAIAgent;
    expect(agent.model).toBe('qwen2.5:7b');
    expect(agent.baseUrl).toBe('http://127.0.0.1:11434/v1');
    const body = agent.requestBody({
      task: {} as never,
      messages: [{ role: 'user', content: 'hi' }],
      tools: [],
      turnIndex: 0,
      seed: 9,
    });
    expect(body).toMatchObject({
      temperature: 0.5,
      max_tokens: 64,
      logprobs: true,
      return_token_ids: true,
      seed: 9,
    });
  });

  it('asks a hosted https API for no token fields in auto mode, and uses max_completion_tokens with OpenAI', () => {
    const agent = parseModelAgentSpec('openai:gpt-4.1?max_tokens=64', { OPENAI_API_KEY: 'k' }) as OpenAIAgent;
    const body = agent.requestBody({
      task: {} as never,
      messages: [{ role: 'user', content: 'hi' }],
      tools: [],
      turnIndex: 0,
      seed: 9,
    });
    expect(body).not.toHaveProperty('logprobs');
    expect(body).not.toHaveProperty('max_tokens');
    expect(body.max_completion_tokens).toBe(64);
  });

  it('makes an Anthropic agent', () => {
    const agent = parseModelAgentSpec('anthropic:claude-sonnet-4-5?input_per_mtok=3&output_per_mtok=15', {
      ANTHROPIC_API_KEY: 'k',
    });
    expect(agent).toBeInstanceOf(AnthropicAgent);
    expect((agent as AnthropicAgent).baseUrl).toBe('https://api.anthropic.com');
  });

  it('lets overrides win over the environment', () => {
    const agent = parseModelAgentSpec(
      'openai:m',
      { OPENAI_BASE_URL: 'http://a/v1' },
      { baseUrl: 'http://b/v1' },
    );
    expect((agent as OpenAIAgent).baseUrl).toBe('http://b/v1');
  });

  it('refuses a hosted API without its key', () => {
    expect(configError(() => parseModelAgentSpec('openai:gpt-4.1', {}))).toMatch(/OPENAI_API_KEY/);
    expect(configError(() => parseModelAgentSpec('anthropic:claude', {}))).toMatch(/ANTHROPIC_API_KEY/);
  });

  it('refuses unknown and invalid options, naming them', () => {
    expect(configError(() => parseModelAgentSpec('openai:m?temprature=1', { OPENAI_API_KEY: 'k' }))).toMatch(
      /temprature/,
    );
    expect(configError(() => parseModelAgentSpec('openai:m?max_tokens=-1', { OPENAI_API_KEY: 'k' }))).toMatch(
      /max_tokens/,
    );
    expect(
      configError(() => parseModelAgentSpec('openai:m?input_per_mtok=1', { OPENAI_API_KEY: 'k' })),
    ).toMatch(/go together/);
  });

  it('refuses other specs', () => {
    expect(configError(() => parseModelAgentSpec('oracle'))).toMatch(/openai:<model>/);
    expect(isModelAgentSpec('openai:x')).toBe(true);
    expect(isModelAgentSpec('scripted:x.yaml')).toBe(false);
  });
});

describe('anthropic spec options', () => {
  it('reach the agent from the spec string: thinking budget and cache prices', async () => {
    const { parseModelAgentSpec: parse } = await import('../../../agents/openai/index.ts');
    const agent = parse(
      'anthropic:claude-sonnet-4-5?thinking_budget=2048&input_per_mtok=3&output_per_mtok=15&cache_read_per_mtok=0.3',
      { ANTHROPIC_API_KEY: 'k' },
    ) as unknown as { options: { thinking?: unknown; price?: unknown } };
    expect(agent.options.thinking).toEqual({ type: 'enabled', budgetTokens: 2048 });
    expect(agent.options.price).toEqual({ inputPerMTok: 3, outputPerMTok: 15, cacheReadPerMTok: 0.3 });
  });
});
