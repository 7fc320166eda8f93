import type { Readable } from 'node:stream';
import { Agent, type Dispatcher, request } from 'undici';

/** Where a response made by `streamingFetch` keeps its body as a Node stream. */
const NODE_BODY = Symbol('chatbox.nodeBody');

/** Statuses whose response has no body (the Fetch standard's null body statuses). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

const ignore = () => undefined;

/** What the SDKs accept as their `fetch`. */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * A `fetch` for the provider SDKs that reads a successful response body as a Node stream with
 * undici's `request`, instead of the WHATWG streams `fetch` puts around every chunk: about half the
 * CPU per streamed chunk (issue 12, `scripts/bench/provider-parse.mjs`), and streamed chunks are most
 * of what a busy service does. The SDK still builds the request, checks the status and maps errors:
 * it gets a real `Response` (headers, status; an error body read in full, so its message and
 * `Retry-After` reach the SDK as before). `nodeBodyOf` hands the body to `readSseEvents`; anyone else
 * reading `response.body` gets a stream that pulls from the same body on demand.
 *
 * Requests with a body that is not text (multipart uploads) go to the global `fetch` unchanged.
 * Aborting `init.signal` aborts the request and the body being read, as with `fetch`.
 */
export function streamingFetch(dispatcher: Dispatcher = new Agent()): FetchFunction {
  return async (input, init = {}) => {
    if (init.body !== undefined && init.body !== null && typeof init.body !== 'string')
      return fetch(input, init);
    const url = input instanceof Request ? input.url : String(input);
    const response = await request(url, {
      method: (init.method ?? 'GET') as Dispatcher.HttpMethod,
      headers: Object.fromEntries(new Headers(init.headers)),
      body: init.body ?? undefined,
      signal: init.signal ?? undefined,
      dispatcher,
    });
    // A body aborted while nobody reads it (the reply failed before reading it, then was
    // cancelled) reports an error: its reader, if any, has its own listener.
    response.body.on('error', ignore);
    const status = response.statusCode;
    const headers = new Headers();
    for (const [name, value] of Object.entries(response.headers))
      for (const item of Array.isArray(value) ? value : value === undefined ? [] : [value])
        headers.append(name, item);
    if (NULL_BODY_STATUSES.has(status)) {
      response.body.resume();
      return new Response(null, { status, headers });
    }
    if (status < 200 || status >= 300) return new Response(await response.body.text(), { status, headers });
    const result = new Response(pullFrom(response.body), { status, headers });
    Object.defineProperty(result, NODE_BODY, { value: response.body });
    return result;
  };
}

/** The body of a response made by `streamingFetch`, as the Node stream it is read from. */
export function nodeBodyOf(response: Response): Readable | undefined {
  return (response as Response & { [NODE_BODY]?: Readable })[NODE_BODY];
}

/** A WHATWG stream over a Node stream that reads nothing until asked (high water mark 0). */
function pullFrom(body: Readable): ReadableStream<Uint8Array> {
  let chunks: AsyncIterator<Buffer> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        chunks ??= body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        const next = await chunks.next();
        if (next.done) controller.close();
        else
          controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.byteLength));
      },
      cancel() {
        body.destroy();
      },
    },
    { highWaterMark: 0 },
  );
}
