import { Logger } from '@nestjs/common';
import type { Observable } from 'rxjs';
import type { LlmProviderConfig } from '@chatbox/common';
import { LlmProviderError } from '../llm-errors';
import type { LlmProvider, ReplyEvent, ReplyRequest } from '../llm.types';
import { parseRetryAfter } from '../retry';
import { lastUserText } from '../turns';
import { PLACEHOLDER_API_KEY } from './openai.provider';
import { abortableStream, readSseEvents } from './provider-stream';

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

/** What one Dify event means for the reply: events to emit, the reply's end, or its failure. */
interface DifyOutcome {
  events?: ReplyEvent[];
  /** `message_end`: the reply is complete (Dify's conversation to continue next time). */
  end?: { conversationId?: string };
  failure?: LlmProviderError;
}

type DifyEventMapper = (event: DifyEvent, endpoint: string) => DifyOutcome;

const answerOutcome: DifyEventMapper = (event) => ({
  events: event.answer ? [{ kind: 'delta', text: event.answer }] : [],
});

const fileOutcome: DifyEventMapper = (event, endpoint) => {
  const file = difyFileEvent(event, endpoint);
  return { events: file ? [file] : [] };
};

const endOutcome: DifyEventMapper = (event) => {
  const usage = event.metadata?.usage;
  const reported = usage && (usage.prompt_tokens !== undefined || usage.completion_tokens !== undefined);
  return {
    events: reported
      ? [
          {
            kind: 'usage',
            promptTokens: usage.prompt_tokens ?? 0,
            completionTokens: usage.completion_tokens ?? 0,
          },
        ]
      : [],
    end: { conversationId: event.conversation_id || undefined },
  };
};

const errorOutcome: DifyEventMapper = (event) => ({
  failure: new LlmProviderError(
    'provider',
    `stream error event ${event.code ?? ''}: ${event.message ?? ''}`.slice(0, ERROR_BODY_CHARS),
    { status: event.status },
  ),
});

/** The events that matter; ping, agent_thought, workflow and tts events carry no reply content. */
const DIFY_EVENT_MAPPERS = new Map<string, DifyEventMapper>([
  ['message', answerOutcome],
  ['agent_message', answerOutcome],
  ['message_file', fileOutcome],
  ['message_end', endOutcome],
  ['error', errorOutcome],
]);

/**
 * Reads the SSE body, emitting reply events as they come, until `message_end` (returned), an error
 * event or unreadable data (thrown), or a body that ends early (thrown as truncated). Undefined
 * when the reply was cancelled meanwhile. `onTask` learns Dify's task id, needed to stop it.
 */
async function readDifyStream(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  endpoint: string,
  emit: (event: ReplyEvent) => void,
  onTask: (taskId: string) => void,
): Promise<DifyOutcome['end']> {
  let end: DifyOutcome['end'];
  const read = await readSseEvents(body, signal, (message) => {
    let event: DifyEvent;
    try {
      event = JSON.parse(message.data) as DifyEvent;
    } catch {
      throw new LlmProviderError('provider', 'unreadable stream data');
    }
    if (event.task_id) onTask(event.task_id);
    const outcome = DIFY_EVENT_MAPPERS.get(event.event ?? '')?.(event, endpoint) ?? {};
    if (outcome.failure) throw outcome.failure;
    outcome.events?.forEach(emit);
    end = outcome.end;
    return end !== undefined;
  });
  if (!read) return undefined;
  if (!end) throw new LlmProviderError('truncated', 'stream ended without message_end');
  return end;
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
      const task: { id?: string; finished: boolean } = { finished: false };
      const stopOnAbort = () => {
        if (!task.finished && task.id) void this.stopTask(task.id, request.userId);
      };
      signal.addEventListener('abort', stopOnAbort, { once: true });
      try {
        const response = await this.post(request, signal);
        if (!response.body) throw new LlmProviderError('truncated', 'response without a body');
        const end = await readDifyStream(response.body, signal, this.endpoint, emit, (id) => (task.id = id));
        if (!end) return;
        task.finished = true;
        emit({ kind: 'end', ...(end.conversationId ? { conversationId: end.conversationId } : {}) });
      } finally {
        task.finished = task.finished || !signal.aborted;
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
