import { Logger } from '@nestjs/common';
import { createParser, EventSourceMessage } from 'eventsource-parser';
import type { Observable } from 'rxjs';
import type { LlmProviderConfig } from '@chatbox/common';
import { LlmProviderError } from '../llm-errors';
import type { LlmProvider, ReplyEvent, ReplyRequest } from '../llm.types';
import { parseRetryAfter } from '../retry';
import { lastUserText } from '../turns';
import { PLACEHOLDER_API_KEY } from './openai.provider';
import { abortableStream } from './provider-stream';

/** Bound of the best-effort `…/stop` call made when a reply is cancelled. */
export const DIFY_STOP_TIMEOUT_MS = 5_000;
/** Longest error body quoted in the operator log. */
const ERROR_BODY_CHARS = 300;

/** File types Dify names by kind only (`"image"`), resolved from the URL's extension. */
const MIME_BY_EXTENSION: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  pdf: 'application/pdf',
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  mp4: 'video/mp4',
  txt: 'text/plain',
};

interface DifyEvent {
  event?: string;
  task_id?: string;
  conversation_id?: string;
  answer?: string;
  url?: string;
  type?: string;
  status?: number;
  code?: string;
  message?: string;
  metadata?: { usage?: { prompt_tokens?: number; completion_tokens?: number } };
}

/** A `message_file` event as a `file` reply event: relative URLs resolved against the endpoint. */
export function difyFileEvent(
  event: DifyEvent,
  endpoint: string,
): Extract<ReplyEvent, { kind: 'file' }> | undefined {
  if (!event.url) return undefined;
  let url: URL;
  try {
    url = new URL(event.url, endpoint);
  } catch {
    return undefined;
  }
  const name = decodeURIComponent(url.pathname.split('/').pop() ?? '') || undefined;
  const extension = name?.includes('.') ? name.split('.').pop()?.toLowerCase() : undefined;
  const mimeType = event.type?.includes('/')
    ? event.type
    : extension && MIME_BY_EXTENSION[extension]?.startsWith(`${event.type ?? ''}`)
      ? MIME_BY_EXTENSION[extension]
      : undefined;
  return { kind: 'file', url: url.toString(), ...(mimeType ? { mimeType } : {}), ...(name ? { name } : {}) };
}

/**
 * Dify chat apps: `POST {endpoint}/chat-messages` in streaming mode. Dify keeps the conversation
 * itself (`conversation_id` from the previous `message_end`), so only the newest user text is sent
 * as `query`; the system prompt and history live in the Dify app. Cancelling aborts the request
 * and asks Dify to stop the task (`POST …/chat-messages/{task_id}/stop`), best-effort.
 */
export class DifyProvider implements LlmProvider {
  readonly type = 'dify';
  readonly id: string;
  private readonly logger = new Logger(DifyProvider.name);
  private readonly endpoint: string;
  private readonly apiKey: string;

  constructor(config: LlmProviderConfig) {
    this.id = config.id;
    this.endpoint = config.endpoint ?? '';
    this.apiKey = config.apiKey || PLACEHOLDER_API_KEY;
  }

  stream(request: ReplyRequest): Observable<ReplyEvent> {
    return abortableStream(async (emit, signal) => {
      let taskId: string | undefined;
      let finished = false;
      const stopOnAbort = () => {
        if (!finished && taskId) void this.stopTask(taskId, request.userId);
      };
      signal.addEventListener('abort', stopOnAbort, { once: true });
      try {
        const response = await this.post(request, signal);
        if (!response.body) throw new LlmProviderError('truncated', 'response without a body');
        let failure: LlmProviderError | undefined;
        let end: { conversationId?: string } | undefined;
        const handle = (message: EventSourceMessage) => {
          if (failure || end) return;
          let data: DifyEvent;
          try {
            data = JSON.parse(message.data) as DifyEvent;
          } catch {
            failure = new LlmProviderError('provider', 'unreadable stream data');
            return;
          }
          taskId = data.task_id ?? taskId;
          switch (data.event) {
            case 'message':
            case 'agent_message':
              if (data.answer) emit({ kind: 'delta', text: data.answer });
              break;
            case 'message_file': {
              const file = difyFileEvent(data, this.endpoint);
              if (file) emit(file);
              break;
            }
            case 'message_end': {
              const usage = data.metadata?.usage;
              if (usage && (usage.prompt_tokens !== undefined || usage.completion_tokens !== undefined))
                emit({
                  kind: 'usage',
                  promptTokens: usage.prompt_tokens ?? 0,
                  completionTokens: usage.completion_tokens ?? 0,
                });
              end = { conversationId: data.conversation_id || undefined };
              break;
            }
            case 'error':
              failure = new LlmProviderError(
                'provider',
                `stream error event ${data.code ?? ''}: ${data.message ?? ''}`.slice(0, ERROR_BODY_CHARS),
                { status: data.status },
              );
              break;
            default:
              break; // ping, agent_thought, workflow and tts events carry no reply text
          }
        };
        const parser = createParser({ onEvent: handle });
        const decoder = new TextDecoder();
        try {
          for await (const chunk of response.body) {
            parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
            if (failure || end) break;
          }
        } catch (error) {
          if (signal.aborted) return;
          throw new LlmProviderError('connection', `stream failed: ${(error as Error).message}`, {
            cause: error,
          });
        }
        if (failure) throw failure;
        if (signal.aborted) return;
        if (!end) throw new LlmProviderError('truncated', 'stream ended without message_end');
        finished = true;
        emit({ kind: 'end', ...(end.conversationId ? { conversationId: end.conversationId } : {}) });
      } finally {
        finished = finished || !signal.aborted;
        signal.removeEventListener('abort', stopOnAbort);
      }
    });
  }

  private async post(request: ReplyRequest, signal: AbortSignal): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(`${this.endpoint}/chat-messages`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.apiKey}`,
          'content-type': 'application/json',
          accept: 'text/event-stream',
        },
        body: JSON.stringify({
          inputs: {},
          query: lastUserText(request),
          response_mode: 'streaming',
          user: request.userId,
          conversation_id: request.conversationId ?? '',
        }),
        signal,
      });
    } catch (error) {
      throw new LlmProviderError('connection', `connection failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (!response.ok) {
      const body = await response.text().catch(() => '');
      throw new LlmProviderError('http', `HTTP ${response.status}: ${body.slice(0, ERROR_BODY_CHARS)}`, {
        status: response.status,
        retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
      });
    }
    return response;
  }

  /** Asks Dify to stop generating; never throws (the reply is already given up). */
  private async stopTask(taskId: string, user: string): Promise<void> {
    try {
      const response = await fetch(`${this.endpoint}/chat-messages/${encodeURIComponent(taskId)}/stop`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ user }),
        signal: AbortSignal.timeout(DIFY_STOP_TIMEOUT_MS),
      });
      await response.body?.cancel();
      if (!response.ok)
        this.logger.warn(`Dify provider ${this.id}: stop of task ${taskId} answered ${response.status}`);
    } catch (error) {
      this.logger.warn(
        `Dify provider ${this.id}: stop of task ${taskId} failed: ${(error as Error).message}`,
      );
    }
  }
}
