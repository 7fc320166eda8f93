import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What one fake answers to one request. Every field is optional; the defaults give a normal reply. */
export interface FakeScript {
  /** Text deltas, one SSE event each. */
  chunks?: string[];
  /** Pause before each chunk (ms). */
  delayMs?: number;
  /** Token counts the fake reports; `null` = report none (the client must estimate). */
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  /** Destroy the socket after this many chunks, without the end marker. */
  cutAfter?: number;
  /** Answer with this HTTP status and the provider's JSON error body instead of a stream. */
  status?: number;
  /** `Retry-After` header value sent with `status`. */
  retryAfter?: string;
  /** Accept the request and never send headers. */
  hang?: boolean;
  /** Accept the request and answer only once this settles (a test's positive marker, not a delay). */
  answerAfter?: Promise<unknown>;
  /** End the HTTP response cleanly but without the end marker (`[DONE]`, `message_stop`, `message_end`). */
  omitEnd?: boolean;
  /** Send the provider's in-stream error event after the chunks (OpenAI: a data event `{error}`; Anthropic, Dify). */
  errorEvent?: { type?: string; code?: string; message: string };
  /**
   * OpenAI: raw `data:` payloads (`[DONE]`, unreadable JSON, ...) sent after the chunks, before the
   * finish chunk (or before the clean end with `omitEnd`).
   */
  rawData?: string[];
  /** Dify: files announced with `message_file` before the end. */
  files?: { url: string; type?: string }[];
  /** Dify: conversation id returned (default: the request's, else a new one). */
  conversationId?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body, or undefined for other bodies. */
  body: any;
  rawBody: Buffer;
  /** ms epoch when the request arrived. */
  at: number;
  /** ms epoch when the client closed the connection before the response finished. */
  closedEarlyAt?: number;
}

export interface ClosedEarly {
  path: string;
  at: number;
}

/** Response writer for one request; resolves when done (or when the client went away). */
export type FakeHandler = (
  request: RecordedRequest,
  script: FakeScript,
  res: ServerResponse,
  helpers: FakeHelpers,
) => Promise<void> | void;

export interface FakeHelpers {
  /** Resolves after `ms`, or at once when the client has gone. */
  sleep(ms: number): Promise<void>;
  /** Whether the client closed the connection. */
  gone(): boolean;
  /** Close the connection mid-response (no end marker, no chunk terminator). */
  cut(): void;
}

/** A local HTTP server speaking one provider's wire format. See `startFakeOpenAi` and friends. */
export class FakeLlmServer {
  /** Every request received, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  /** Requests whose client closed the connection before the response finished. */
  readonly closedEarly: ClosedEarly[] = [];
  private readonly queue: FakeScript[] = [];
  private defaultScript: FakeScript = {};
  private readonly server: Server;
  private readonly closeWaiters: Array<() => void> = [];
  private closing = false;
  url = '';

  /**
   * @param routes path suffix (`*` = one segment) → handler; the first match wins.
   * @param unscripted routes that never consume a script (control endpoints such as Dify's stop).
   */
  constructor(
    private readonly routes: Record<string, FakeHandler>,
    private readonly unscripted: string[] = [],
  ) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Sets the answer for every following request once the one-off scripts (`scriptOnce`) are used up. */
  script(script: FakeScript): this {
    this.defaultScript = script;
    return this;
  }

  /** Queues a one-off answer for the next `times` requests, before the default script applies. */
  scriptOnce(script: FakeScript, times = 1): this {
    for (let index = 0; index < times; index++) this.queue.push(script);
    return this;
  }

  /** Extra state of a provider-specific fake, cleared by `reset()`. */
  protected readonly resetHooks: Array<() => void> = [];

  /** Forgets recorded requests, early closes and scripts (and provider-specific records). */
  reset(): this {
    this.requests.length = 0;
    this.closedEarly.length = 0;
    this.queue.length = 0;
    this.defaultScript = {};
    this.resetHooks.forEach((hook) => hook());
    return this;
  }

  /** Registers state to clear on `reset()`. */
  onReset(hook: () => void): this {
    this.resetHooks.push(hook);
    return this;
  }

  /** Requests to one path (exact match, or ending with it). */
  requestsTo(path: string): RecordedRequest[] {
    return this.requests.filter((request) => request.path === path || request.path.endsWith(path));
  }

  /** Resolves when a client has closed a connection early (at once if one already did). */
  waitForClientClose(timeoutMs = 2_000): Promise<ClosedEarly> {
    if (this.closedEarly.length > 0) return Promise.resolve(this.closedEarly[this.closedEarly.length - 1]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no early client close within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve(this.closedEarly[this.closedEarly.length - 1]);
      });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rawBody = Buffer.concat(chunks);
    let body: unknown;
    if (String(req.headers['content-type'] ?? '').includes('json')) {
      try {
        body = JSON.parse(rawBody.toString('utf8'));
      } catch {
        body = undefined;
      }
    }
    const path = (req.url ?? '/').split('?')[0];
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      path,
      headers: req.headers,
      body,
      rawBody,
      at: Date.now(),
    };
    this.requests.push(recorded);
    let gone = false;
    let cutByServer = false;
    res.on('close', () => {
      gone = true;
      if (!res.writableFinished && !cutByServer && !this.closing) {
        recorded.closedEarlyAt = Date.now();
        this.closedEarly.push({ path, at: recorded.closedEarlyAt });
        this.closeWaiters.splice(0).forEach((wake) => wake());
      }
    });
    const route = Object.entries(this.routes).find(([suffix]) => matches(path, suffix));
    if (!route) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    const script = this.unscripted.includes(route[0]) ? {} : (this.queue.shift() ?? this.defaultScript);
    if (script.hang) return; // the client's timeout (or close()) ends it
    const helpers: FakeHelpers = {
      sleep: (ms) =>
        new Promise((resolve) => {
          if (gone || ms <= 0) return resolve();
          const wake = () => {
            clearTimeout(timer);
            res.off('close', wake);
            resolve();
          };
          const timer = setTimeout(wake, ms);
          res.once('close', wake);
        }),
      gone: () => gone,
      cut: () => {
        // Flush what was written, then close the TCP connection without the end marker or the
        // final chunk of the chunked body: what a crashed upstream or a dropped proxy looks like.
        cutByServer = true;
        const socket = res.socket;
        socket?.end(() => socket.destroy());
      },
    };
    try {
      await script.answerAfter;
      await route[1](recorded, script, res, helpers);
    } catch {
      res.socket?.destroy();
    }
  }
}

/** `suffix` may contain `*` for one path segment (e.g. `/chat-messages/*\/stop`). */
function matches(path: string, suffix: string): boolean {
  const pattern = new RegExp(`${suffix.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]+')}$`);
  return pattern.test(path);
}

/** Starts an SSE response. */
export function startSse(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  res.flushHeaders();
}

/** Answers an error status with a JSON body and optional Retry-After. */
export function sendError(res: ServerResponse, status: number, body: unknown, retryAfter?: string): void {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
  res.writeHead(status, headers).end(JSON.stringify(body));
}

/** The chunks to send: the script's, or a default two-chunk reply. */
export function chunksOf(script: FakeScript): string[] {
  return script.chunks ?? ['Hello', ' from the fake.'];
}

export function usageOf(script: FakeScript): { prompt_tokens: number; completion_tokens: number } | null {
  return script.usage === undefined ? { prompt_tokens: 10, completion_tokens: 5 } : script.usage;
}
