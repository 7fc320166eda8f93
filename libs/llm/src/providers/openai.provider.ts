import OpenAI, { APIConnectionError, APIError } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { Observable } from 'rxjs';
import type { LlmProviderConfig } from '@chatbox/common';
import { LlmProviderError } from '../llm-errors';
import type { LlmProvider, ReplyEvent, ReplyRequest } from '../llm.types';
import { toProviderTurn } from '../turns';
import { abortableStream, fromSdkError, readSseEvents } from './provider-stream';
import { FetchFunction, nodeBodyOf, streamingFetch } from './streaming-fetch';

/** Sent when no key is configured: local OpenAI-compatible servers (Ollama, vLLM) need none, the SDK needs one. */
export const PLACEHOLDER_API_KEY = 'no-key';

export interface ProviderClientOptions {
  /** Upper bound of one HTTP request inside the SDK; LlmService enforces the real timeouts. */
  requestTimeoutMs: number;
  /** The SDK's `fetch`; the global one when not given. */
  fetch?: FetchFunction;
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
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}

export const OPENAI_SDK_ERRORS = { APIError, APIConnectionError };

/** A chunk as it arrives; a server may put an `error` object in a data event instead. */
type StreamedChunk = Partial<ChatCompletionChunk> & { error?: object };

/**
 * OpenAI chat completions (and every compatible server): `POST {endpoint}/chat/completions` with
 * `stream:true` and `stream_options.include_usage`. The SDK makes the request (auth, base URL,
 * headers, HTTP errors as its `APIError`); the SSE body is parsed here (see `readSseEvents`), with the
 * SDK stream's rules: everything after `data: [DONE]` is ignored, though the body is still read to
 * its end, and a data event carrying `error` fails the reply. Compatible servers are not consistent
 * about the end marker, so a stream is complete when it delivered a `finish_reason`, the usage chunk
 * or `[DONE]`, and truncated when it ended without any of them.
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
    // Replies are streamed through undici's `request`, not `fetch` (see `streamingFetch`).
    this.client = createOpenAiClient(config, { ...options, fetch: streamingFetch() });
  }

  stream(request: ReplyRequest, systemPrompt: string): Observable<ReplyEvent> {
    return abortableStream(async (emit, signal) => {
      let response: Response;
      try {
        // `asResponse()`: the SDK has checked the status (a non-2xx is thrown as its APIError) and
        // hands over the body unread. Aborting `signal` aborts the request and so the body read.
        response = await this.client.chat.completions
          .create(
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
          )
          .asResponse();
      } catch (error) {
        throw fromSdkError(error, OPENAI_SDK_ERRORS);
      }
      const body = nodeBodyOf(response) ?? response.body;
      if (!body) throw new LlmProviderError('connection', 'stream failed: response without a body');
      let finished = false;
      let usageSeen = false;
      let done = false;
      const read = await readSseEvents(body, signal, (message) => {
        if (done) return;
        if (message.data.startsWith('[DONE]')) {
          done = true;
          return;
        }
        const chunk = parseChunk(message.data, response.headers);
        const choice = chunk?.choices?.[0];
        const text = choice?.delta?.content;
        if (text) emit({ kind: 'delta', text });
        if (choice?.finish_reason) finished = true;
        if (chunk?.usage) {
          usageSeen = true;
          emit({
            kind: 'usage',
            promptTokens: chunk.usage.prompt_tokens ?? 0,
            completionTokens: chunk.usage.completion_tokens ?? 0,
          });
        }
      });
      if (!read) return;
      if (!finished && !usageSeen && !done)
        throw new LlmProviderError('truncated', 'stream ended without finish_reason, usage or [DONE]');
      emit({ kind: 'end' });
    });
  }
}

/**
 * One data event as a chunk. Unreadable JSON and an `error` object fail the reply the way the SDK's
 * own stream did (a SyntaxError, an `APIError` without status), mapped by `fromSdkError`.
 */
function parseChunk(data: string, headers: Headers): StreamedChunk | null {
  let chunk: StreamedChunk | null;
  try {
    chunk = JSON.parse(data) as StreamedChunk | null;
  } catch (error) {
    throw fromSdkError(error, OPENAI_SDK_ERRORS);
  }
  if (chunk?.error)
    throw fromSdkError(new APIError(undefined, chunk.error, undefined, headers), OPENAI_SDK_ERRORS);
  return chunk;
}
