import type { IncomingHttpHeaders } from 'node:http';
import OpenAI, { APIConnectionError, APIError } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { Observable } from 'rxjs';
import { Agent, request } from 'undici';
import type { LlmProviderConfig } from '@chatbox/common';
import { LlmProviderError } from '../llm-errors';
import type { LlmProvider, ReplyEvent, ReplyRequest } from '../llm.types';
import { toProviderTurn } from '../turns';
import { abortableStream, fromSdkError, readSseEvents } from './provider-stream';

/** Sent when no key is configured: local OpenAI-compatible servers (Ollama, vLLM) need none, the SDK needs one. */
export const PLACEHOLDER_API_KEY = 'no-key';
const OPENAI_DEFAULT_ENDPOINT = 'https://api.openai.com/v1';

export interface ProviderClientOptions {
  /**
   * Upper bound of the wait for a provider's response headers (the SDKs' `timeout`, and
   * `OpenAiProvider`'s own request); LlmService enforces the real timeouts.
   */
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

/** A chunk as it arrives; a server may put an `error` object in a data event instead. */
type StreamedChunk = Partial<ChatCompletionChunk> & { error?: object };

/**
 * OpenAI chat completions (and every compatible server): `POST {endpoint}/chat/completions` with
 * `stream:true` and `stream_options.include_usage`, sent with undici's `request` and read as a Node
 * stream. The SDK's request pipeline (request options, header objects, a WHATWG `Response` around the
 * body) cost about an eighth of the main thread while a burst of 200 first messages was handled
 * (issue 12), for a request whose shape never changes: the URL and headers are built once here. A
 * non-2xx answer still becomes the SDK's own error (`APIError.generate`, its status classes and
 * messages), a failed connection its `APIConnectionError`, so `fromSdkError` maps both as before.
 * The SSE body is parsed here (see `readSseEvents`) with the SDK stream's rules: everything after
 * `data: [DONE]` is ignored, though the body is still read to its end, and a data event carrying
 * `error` fails the reply. Compatible servers are not consistent about the end marker, so a stream is
 * complete when it delivered a `finish_reason`, the usage chunk or `[DONE]`, and truncated when it
 * ended without any of them.
 */
export class OpenAiProvider implements LlmProvider {
  readonly type = 'openai';
  readonly id: string;
  private readonly completionsUrl: string;
  private readonly headers: Record<string, string>;
  private readonly dispatcher = new Agent();

  constructor(
    private readonly config: LlmProviderConfig,
    private readonly options: ProviderClientOptions,
  ) {
    this.id = config.id;
    // The configured endpoint comes without a trailing slash (load-config), else the SDK's default.
    this.completionsUrl = `${config.endpoint ?? OPENAI_DEFAULT_ENDPOINT}/chat/completions`;
    this.headers = {
      authorization: `Bearer ${config.apiKey || PLACEHOLDER_API_KEY}`,
      'content-type': 'application/json',
      accept: 'text/event-stream',
    };
  }

  stream(reply: ReplyRequest, systemPrompt: string): Observable<ReplyEvent> {
    return abortableStream(async (emit, signal) => {
      const response = await this.send(
        {
          model: this.config.model ?? '',
          messages: [
            ...(systemPrompt ? [{ role: 'system' as const, content: systemPrompt }] : []),
            ...reply.history.map(toProviderTurn),
          ],
          stream: true,
          stream_options: { include_usage: true },
        },
        signal,
      );
      const { body } = response;
      // A body aborted while nobody reads it (the reply was cancelled before its read) reports an
      // error: the reader, if any, has its own listener.
      body.on('error', ignore);
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

  /**
   * Sends the request; resolves with a 2xx response whose body is unread. Aborting `signal` aborts
   * the request and so the body read. The wait for the response's headers is bounded like the SDK's
   * `timeout` (LlmService enforces the reply's real deadlines).
   */
  private async send(payload: object, signal: AbortSignal) {
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(this.completionsUrl, {
        method: 'POST',
        headers: this.headers,
        body: JSON.stringify(payload),
        signal,
        dispatcher: this.dispatcher,
        headersTimeout: this.options.requestTimeoutMs,
      });
    } catch (error) {
      throw fromSdkError(
        new APIConnectionError({ message: (error as Error).message, cause: error as Error }),
        OPENAI_SDK_ERRORS,
      );
    }
    if (response.statusCode >= 200 && response.statusCode < 300) return response;
    // As the SDK reads an error answer: its JSON (the `error` object), else its text as the message.
    const text = await response.body.text().catch((error: unknown) => (error as Error).message);
    const json = parseJson(text);
    throw fromSdkError(
      APIError.generate(
        response.statusCode,
        json,
        json === undefined ? text : undefined,
        toHeaders(response.headers),
      ),
      OPENAI_SDK_ERRORS,
    );
  }
}

const ignore = () => undefined;

function parseJson(text: string): object | undefined {
  try {
    return JSON.parse(text) as object;
  } catch {
    return undefined;
  }
}

/** undici's header record as the `Headers` the SDK's errors carry (`Retry-After` is read from it). */
function toHeaders(record: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(record))
    for (const item of Array.isArray(value) ? value : value === undefined ? [] : [value])
      headers.append(name, item);
  return headers;
}

/**
 * One data event as a chunk. Unreadable JSON and an `error` object fail the reply the way the SDK's
 * own stream did (a SyntaxError, an `APIError` without status), mapped by `fromSdkError`.
 */
function parseChunk(data: string, headers: IncomingHttpHeaders): StreamedChunk | null {
  let chunk: StreamedChunk | null;
  try {
    chunk = JSON.parse(data) as StreamedChunk | null;
  } catch (error) {
    throw fromSdkError(error, OPENAI_SDK_ERRORS);
  }
  if (chunk?.error)
    throw fromSdkError(
      new APIError(undefined, chunk.error, undefined, toHeaders(headers)),
      OPENAI_SDK_ERRORS,
    );
  return chunk;
}
