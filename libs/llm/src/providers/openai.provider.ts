import OpenAI, { APIConnectionError, APIError } from 'openai';
import type { Observable } from 'rxjs';
import type { LlmProviderConfig } from '@chatbox/common';
import { LlmProviderError } from '../llm-errors';
import type { LlmProvider, ReplyEvent, ReplyRequest } from '../llm.types';
import { toProviderTurn } from '../turns';
import { abortableStream, fromSdkError } from './provider-stream';

/** Sent when no key is configured: local OpenAI-compatible servers (Ollama, vLLM) need none, the SDK needs one. */
export const PLACEHOLDER_API_KEY = 'no-key';

export interface ProviderClientOptions {
  /** Upper bound of one HTTP request inside the SDK; LlmService enforces the real timeouts. */
  requestTimeoutMs: number;
}

/** Builds the SDK client for an openai-type provider (also used for speech-to-text and text-to-speech). */
export function createOpenAiClient(config: LlmProviderConfig, options: ProviderClientOptions): OpenAI {
  return new OpenAI({
    baseURL: config.endpoint,
    apiKey: config.apiKey || PLACEHOLDER_API_KEY,
    // Configuration comes from AppConfig only: keep the SDK from reading OPENAI_* variables.
    organization: null,
    project: null,
    logLevel: 'off',
    maxRetries: 0,
    timeout: options.requestTimeoutMs,
  });
}

export const OPENAI_SDK_ERRORS = { APIError, APIConnectionError };

/**
 * OpenAI chat completions (and every compatible server): `POST {endpoint}/chat/completions` with
 * `stream:true` and `stream_options.include_usage`. The SDK treats a body that ends without
 * `data: [DONE]` as a normal end, so a stream that delivered neither a `finish_reason` nor the usage
 * chunk is reported as truncated.
 */
export class OpenAiProvider implements LlmProvider {
  readonly type = 'openai';
  readonly id: string;
  private readonly client: OpenAI;

  constructor(
    private readonly config: LlmProviderConfig,
    options: ProviderClientOptions,
  ) {
    this.id = config.id;
    this.client = createOpenAiClient(config, options);
  }

  stream(request: ReplyRequest, systemPrompt: string): Observable<ReplyEvent> {
    return abortableStream(async (emit, signal) => {
      let finished = false;
      let usageSeen = false;
      try {
        const stream = await this.client.chat.completions.create(
          {
            model: this.config.model ?? '',
            messages: [
              ...(systemPrompt ? [{ role: 'system' as const, content: systemPrompt }] : []),
              ...request.history.map(toProviderTurn),
            ],
            stream: true,
            stream_options: { include_usage: true },
          },
          { signal, maxRetries: 0 },
        );
        for await (const chunk of stream) {
          const choice = chunk.choices?.[0];
          const text = choice?.delta?.content;
          if (text) emit({ kind: 'delta', text });
          if (choice?.finish_reason) finished = true;
          if (chunk.usage) {
            usageSeen = true;
            emit({
              kind: 'usage',
              promptTokens: chunk.usage.prompt_tokens ?? 0,
              completionTokens: chunk.usage.completion_tokens ?? 0,
            });
          }
        }
      } catch (error) {
        throw fromSdkError(error, OPENAI_SDK_ERRORS);
      }
      if (signal.aborted) return;
      if (!finished && !usageSeen)
        throw new LlmProviderError('truncated', 'stream ended without finish_reason, usage or [DONE]');
      emit({ kind: 'end' });
    });
  }
}
