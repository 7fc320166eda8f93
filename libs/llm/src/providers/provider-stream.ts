import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Observable } from 'rxjs';
import { LlmProviderError } from '../llm-errors';
import type { ReplyEvent } from '../llm.types';
import { parseRetryAfter } from '../retry';

/** Emits reply events; `run` resolves after emitting `end`, or rejects with the failure. */
export type StreamRun = (emit: (event: ReplyEvent) => void, signal: AbortSignal) => Promise<void>;

/**
 * Wraps an async producer in an Observable whose teardown aborts the upstream request. After an
 * abort nothing more is emitted (the subscriber is gone). Failures reach the Observable's error
 * channel as `LlmProviderError`; `LlmService` turns them into the reply contract. A producer emits
 * `end` once its body is read (or cancelled): a teardown after that has nothing to abort, and
 * skipping the abort spares each finished reply an AbortError and the HTTP client's abort handlers.
 *
 * Deltas emitted together (the events of one network read) leave as one delta, in a microtask: a
 * busy process reads several provider events at a time, and every delta costs a frame to map, send
 * and parse on the client (issue 12), while a single event is passed on within the same read. Any
 * other event, the end of the run and a failure pass the pending text on first.
 */
export function abortableStream(run: StreamRun): Observable<ReplyEvent> {
  return new Observable<ReplyEvent>((subscriber) => {
    const controller = new AbortController();
    let ended = false;
    let pendingText: string | undefined;
    const flush = () => {
      if (pendingText === undefined) return;
      const text = pendingText;
      pendingText = undefined;
      if (!controller.signal.aborted) subscriber.next({ kind: 'delta', text });
    };
    run((event) => {
      if (controller.signal.aborted) return;
      if (event.kind === 'delta') {
        if (pendingText === undefined) {
          pendingText = event.text;
          queueMicrotask(flush);
        } else pendingText += event.text;
        return;
      }
      flush();
      if (event.kind === 'end') ended = true;
      subscriber.next(event);
    }, controller.signal).then(
      () => {
        flush();
        subscriber.complete();
      },
      (error: unknown) => {
        flush();
        if (!controller.signal.aborted) subscriber.error(error);
      },
    );
    return () => {
      if (!ended) controller.abort();
    };
  });
}

/**
 * What one server-sent event means to the reader: `true` when the reply is complete and the rest of
 * the body is not needed; a throw (an `LlmProviderError`) fails the reply. Either stops the read.
 */
export type SseEventHandler = (message: EventSourceMessage) => boolean | void;

/**
 * Reads an SSE body event by event with `eventsource-parser` (the SDKs' own stream stacks, nested
 * async generators over the same body, cost measurably more CPU per chunk: issue 12). The body is a
 * Node stream when the response came from undici's `request` (`OpenAiProvider`), else a WHATWG stream.
 * Leaving the read early cancels the body, which aborts the request. Resolves `false` when the reply
 * was cancelled meanwhile (`signal` aborted), `true` when the body ended or the handler stopped it;
 * a body that fails while being read is a connection failure.
 */
export async function readSseEvents(
  body: ReadableStream<Uint8Array> | Readable,
  signal: AbortSignal,
  onEvent: SseEventHandler,
): Promise<boolean> {
  let stopped = false;
  let failure: unknown;
  const parser = createParser({
    onEvent: (message) => {
      if (stopped) return;
      try {
        stopped = onEvent(message) === true;
      } catch (error) {
        failure = error;
        stopped = true;
      }
    },
  });
  const feed = (text: string) => {
    parser.feed(text);
    return stopped;
  };
  try {
    if (body instanceof Readable) await readNodeStream(body, feed);
    else await readWebStream(body, feed);
  } catch (error) {
    if (signal.aborted) return false;
    throw new LlmProviderError('connection', `stream failed: ${(error as Error).message}`, { cause: error });
  }
  if (failure !== undefined) throw failure;
  return !signal.aborted;
}

/** Feeds the text of each chunk until `feed` says stop (then cancels the body) or the body ends. */
async function readWebStream(body: ReadableStream<Uint8Array>, feed: (text: string) => boolean) {
  const decoder = new TextDecoder();
  for await (const chunk of body) if (feed(decoder.decode(chunk, { stream: true }))) break;
}

/**
 * The same over a Node stream, with its events rather than an async iterator (a promise per chunk
 * is what the Node path saves). A body destroyed before its end without an error (a cancelled
 * request) fails like a cut connection; `readSseEvents` tells the two apart by the signal.
 */
function readNodeStream(body: Readable, feed: (text: string) => boolean): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const settle = (error?: Error) => {
      body.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (error) reject(error);
      else resolve();
    };
    // undici's body streams ignore `setEncoding`: decode here (a character may span two chunks).
    const decoder = new StringDecoder('utf8');
    const onData = (chunk: Buffer | string) => {
      if (!feed(typeof chunk === 'string' ? chunk : decoder.write(chunk))) return;
      settle();
      // A body destroyed before its end reports an abort error: nobody needs it any more.
      body.on('error', ignore).destroy();
    };
    const onEnd = () => {
      feed(decoder.end());
      settle();
    };
    const onError = (error: Error) => settle(error);
    const onClose = () => settle(new Error('terminated'));
    body.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose);
  });
}

const ignore = () => undefined;

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
