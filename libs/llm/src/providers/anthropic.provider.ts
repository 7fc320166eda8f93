import Anthropic, { APIConnectionError, APIError } from '@anthropic-ai/sdk';
import type { Observable } from 'rxjs';
import type { LlmProviderConfig } from '@chatbox/common';
import { LlmProviderError } from '../llm-errors';
import type { LlmProvider, ReplyEvent, ReplyRequest } from '../llm.types';
import { alternatingTurns } from '../turns';
import { PLACEHOLDER_API_KEY, ProviderClientOptions } from './openai.provider';
import { abortableStream, fromSdkError } from './provider-stream';

/** Upper bound of a reply's length in tokens (Anthropic requires `max_tokens`). */
export const ANTHROPIC_MAX_TOKENS = 4096;
/** The Messages API version SPEC 15 names. */
export const ANTHROPIC_VERSION = '2023-06-01';

export const ANTHROPIC_SDK_ERRORS = { APIError, APIConnectionError };

/** Anthropic `error` event types that are worth a retry, with the HTTP status they stand for. */
const RETRYABLE_STREAM_ERRORS: Record<string, number> = {
  overloaded_error: 529,
  api_error: 500,
  rate_limit_error: 429,
  timeout_error: 504,
};

/**
 * The SDK appends `/v1/messages` to its base URL; SPEC 15 writes the endpoint as the API root
 * including `/v1` (`POST {endpoint}/messages`). Both spellings work: a trailing `/v1` is removed.
 */
export function anthropicBaseUrl(endpoint: string | undefined): string | undefined {
  return endpoint?.replace(/\/v1\/?$/, '');
}

/**
 * Anthropic Messages API, streamed: top-level `system`, strictly alternating `user`/`assistant`
 * turns starting with `user`, `max_tokens`. Usage comes from `message_start` (input tokens) and
 * `message_delta` (output tokens); an `error` event is a failure; no `message_stop` is truncation.
 */
export class AnthropicProvider implements LlmProvider {
  readonly type = 'anthropic';
  readonly id: string;
  private readonly client: Anthropic;

  constructor(
    private readonly config: LlmProviderConfig,
    options: ProviderClientOptions,
  ) {
    this.id = config.id;
    const apiKey = config.apiKey || PLACEHOLDER_API_KEY;
    this.client = new Anthropic({
      baseURL: anthropicBaseUrl(config.endpoint),
      apiKey,
      // SDK 1.x sends the key as `Authorization: Bearer`; the Messages API (SPEC 15) and
      // Anthropic-compatible gateways expect `x-api-key`. A null header removes the Bearer one.
      defaultHeaders: { 'anthropic-version': ANTHROPIC_VERSION, 'x-api-key': apiKey, Authorization: null },
      logLevel: 'off',
      maxRetries: 0,
      timeout: options.requestTimeoutMs,
    });
  }

  stream(request: ReplyRequest, systemPrompt: string): Observable<ReplyEvent> {
    return abortableStream(async (emit, signal) => {
      let stopped = false;
      let inputTokens: number | undefined;
      let outputTokens: number | undefined;
      try {
        const stream = await this.client.messages.create(
          {
            model: this.config.model ?? '',
            max_tokens: ANTHROPIC_MAX_TOKENS,
            ...(systemPrompt ? { system: systemPrompt } : {}),
            messages: alternatingTurns(request.history),
            stream: true,
          },
          { signal, maxRetries: 0 },
        );
        for await (const event of stream) {
          switch (event.type) {
            case 'message_start':
              inputTokens = event.message.usage?.input_tokens ?? inputTokens;
              outputTokens = event.message.usage?.output_tokens || outputTokens;
              break;
            case 'content_block_delta':
              if (event.delta.type === 'text_delta' && event.delta.text)
                emit({ kind: 'delta', text: event.delta.text });
              break;
            case 'message_delta':
              if (event.usage?.output_tokens !== undefined && event.usage.output_tokens !== null)
                outputTokens = event.usage.output_tokens;
              if (typeof event.usage?.input_tokens === 'number' && event.usage.input_tokens > 0)
                inputTokens = event.usage.input_tokens;
              break;
            case 'message_stop':
              stopped = true;
              break;
          }
        }
      } catch (error) {
        throw streamError(error);
      }
      if (signal.aborted) return;
      if (!stopped) throw new LlmProviderError('truncated', 'stream ended without message_stop');
      if (inputTokens !== undefined || outputTokens !== undefined)
        emit({ kind: 'usage', promptTokens: inputTokens ?? 0, completionTokens: outputTokens ?? 0 });
      emit({ kind: 'end' });
    });
  }
}

/** An in-stream `error` event arrives as an APIError without status; keep its type retryable when it is. */
function streamError(error: unknown): LlmProviderError {
  const mapped = fromSdkError(error, ANTHROPIC_SDK_ERRORS);
  if (mapped.kind !== 'provider' || !(error instanceof APIError)) return mapped;
  const type = (error.error as { error?: { type?: string } } | undefined)?.error?.type ?? error.type ?? '';
  const status = RETRYABLE_STREAM_ERRORS[type ?? ''];
  return new LlmProviderError('provider', `stream error event ${type || 'unknown'}: ${error.message}`, {
    status,
    cause: error,
  });
}
