import WebSocket from 'ws';
import { userToken } from './tokens';

export interface Frame {
  type: string;
  sender?: string;
  timestamp?: string;
  id?: string;
  session_id?: string;
  user_id?: string;
  content?: string;
  model_id?: string;
  models?: { id: string; name: string }[];
  metadata?: Record<string, string>;
  error?: { code: string; message: string; recoverable: boolean; retry_after?: number };
  [key: string]: unknown;
}

/** A real `ws` client that records every frame and lets a test wait for the ones it expects. */
export class TestClient {
  readonly frames: Frame[] = [];
  private waiters: { predicate: (frame: Frame) => boolean; resolve: (frame: Frame) => void }[] = [];
  closeCode?: number;
  closeReason?: string;
  readonly closed: Promise<number>;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      this.waiters = this.waiters.filter((waiter) => {
        if (!waiter.predicate(frame)) return true;
        waiter.resolve(frame);
        return false;
      });
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve(code);
      }),
    );
  }

  static async connect(
    url: string,
    options: { token?: string; sessionId?: string; headers?: Record<string, string>; origin?: string } = {},
  ): Promise<TestClient> {
    const query = new URLSearchParams();
    if (options.token) query.set('token', options.token);
    if (options.sessionId) query.set('session_id', options.sessionId);
    const socket = new WebSocket(`${url}?${query}`, { headers: options.headers, origin: options.origin });
    const client = new TestClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_request, response) =>
        reject(new HandshakeError(response.statusCode ?? 0, response)),
      );
    });
    return client;
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Resolves with the first frame (already received or future) matching the predicate. */
  waitFor(predicate: (frame: Frame) => boolean, timeoutMs = 10_000, from = 0): Promise<Frame> {
    const existing = this.frames.slice(from).find(predicate);
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter.resolve !== done);
        reject(
          new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`),
        );
      }, timeoutMs);
      const done = (frame: Frame) => {
        clearTimeout(timer);
        resolve(frame);
      };
      this.waiters.push({ predicate, resolve: done });
    });
  }

  /**
   * Sends a `ping` and waits for its `pong`. The server handles the frames of one socket in order, so
   * by then it has finished with every frame this client sent before, and sent what they caused:
   * the marker that proves a frame that should not come never came.
   */
  async roundTrip(timeoutMs = 10_000): Promise<void> {
    const from = this.frames.length;
    this.send({ type: 'ping' });
    await this.waitFor((frame) => frame.type === 'pong', timeoutMs, from);
  }

  waitForType(type: string, timeoutMs?: number): Promise<Frame> {
    return this.waitFor((frame) => frame.type === type, timeoutMs);
  }

  /** The done frame of another reply than the one `previous` ended (the next answer in the session). */
  waitForDoneAfter(previous: Frame, timeoutMs?: number): Promise<Frame> {
    return this.waitFor(
      (frame) =>
        frame.type === 'ai_response' &&
        frame.metadata?.done === 'true' &&
        frame.metadata.message_id !== previous.metadata!.message_id,
      timeoutMs,
    );
  }

  /** Waits for the done frame of a reply and returns every ai_response frame of it. */
  async waitForReply(
    messageId?: string,
    timeoutMs = 15_000,
  ): Promise<{ frames: Frame[]; done: Frame; text: string }> {
    const done = await this.waitFor(
      (frame) =>
        frame.type === 'ai_response' &&
        frame.metadata?.done === 'true' &&
        (messageId === undefined || frame.metadata?.message_id === messageId),
      timeoutMs,
    );
    const id = done.metadata!.message_id;
    const frames = this.frames.filter(
      (frame) => frame.type === 'ai_response' && frame.metadata?.message_id === id,
    );
    const text = frames
      .filter((frame) => frame.metadata?.done !== 'true')
      .map((frame) => frame.content ?? '')
      .join('');
    return { frames, done, text };
  }

  ofType(type: string): Frame[] {
    return this.frames.filter((frame) => frame.type === type);
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) {
      this.socket.close();
      await this.closed;
    }
  }
}

/**
 * A socket of the user `userId`, once the server greeted it (`connection_status`), kept in `clients`
 * for the test's clean-up.
 */
export async function greetedClient(
  url: string,
  userId: string,
  clients: TestClient[],
  sessionId?: string,
): Promise<TestClient> {
  const client = await TestClient.connect(url, { token: userToken(userId), sessionId });
  clients.push(client);
  await client.waitForType('connection_status');
  return client;
}

export class HandshakeError extends Error {
  constructor(
    readonly status: number,
    readonly response: NodeJS.ReadableStream,
  ) {
    super(`handshake refused with ${status}`);
  }

  async body(): Promise<string> {
    let text = '';
    for await (const chunk of this.response) text += chunk.toString();
    return text;
  }
}

/** The status of a refused handshake (or 101 when it was accepted). */
export async function handshakeStatus(
  url: string,
  options: Parameters<typeof TestClient.connect>[1] = {},
): Promise<{ status: number; body: string }> {
  try {
    const client = await TestClient.connect(url, options);
    await client.close();
    return { status: 101, body: '' };
  } catch (error) {
    if (error instanceof HandshakeError) return { status: error.status, body: await error.body() };
    throw error;
  }
}
