import { Observable } from 'rxjs';
import { LlmProviderError } from '../llm-errors';
import type { ReplyEvent } from '../llm.types';
import { parseRetryAfter } from '../retry';

/** Emits reply events; `run` resolves after emitting `end`, or rejects with the failure. */
export type StreamRun = (emit: (event: ReplyEvent) => void, signal: AbortSignal) => Promise<void>;

/**
 * Wraps an async producer in an Observable whose teardown aborts the upstream request. After an
 * abort nothing more is emitted (the subscriber is gone). Failures reach the Observable's error
 * channel as `LlmProviderError`; `LlmService` turns them into the reply contract.
 */
export function abortableStream(run: StreamRun): Observable<ReplyEvent> {
  return new Observable<ReplyEvent>((subscriber) => {
    const controller = new AbortController();
    run((event) => {
      if (!controller.signal.aborted) subscriber.next(event);
    }, controller.signal).then(
      () => subscriber.complete(),
      (error: unknown) => {
        if (!controller.signal.aborted) subscriber.error(error);
      },
    );
    return () => controller.abort();
  });
}

interface SdkErrorClasses {
  APIError: abstract new (...args: never[]) => Error & { status?: number; headers?: Headers };
  APIConnectionError: abstract new (...args: never[]) => Error;
}

/**
 * Maps an error thrown by the `openai` or `@anthropic-ai/sdk` client (same Stainless shapes) to an
 * `LlmProviderError`: an HTTP status keeps its status and `Retry-After`; connection failures and
 * sockets cut by the server (undici `TypeError: terminated`) are connection errors.
 */
export function fromSdkError(error: unknown, classes: SdkErrorClasses): LlmProviderError {
  if (error instanceof LlmProviderError) return error;
  if (error instanceof classes.APIConnectionError)
    return new LlmProviderError('connection', `connection failed: ${error.message}`, { cause: error });
  if (error instanceof classes.APIError) {
    const headers = error.headers;
    if (typeof error.status === 'number')
      return new LlmProviderError('http', `HTTP ${error.status}: ${error.message}`, {
        status: error.status,
        retryAfterMs: parseRetryAfter(
          headers?.get('retry-after'),
          Date.now(),
          headers?.get('retry-after-ms'),
        ),
        cause: error,
      });
    return new LlmProviderError('provider', `stream error: ${error.message}`, { cause: error });
  }
  if (error instanceof SyntaxError)
    return new LlmProviderError('provider', `unreadable stream data: ${error.message}`, { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new LlmProviderError('connection', `stream failed: ${message}`, { cause: error });
}
