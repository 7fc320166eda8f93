import { randomBytes } from 'node:crypto';
import { AddressInfo, createServer, connect as connectTcp, Server, Socket } from 'node:net';
import { getConnectionToken } from '@nestjs/mongoose';
import Redis from 'ioredis';
import type { Connection } from 'mongoose';
import { FakeOpenAi, startFakeOpenAi, openAiProviderEnv } from '../support/fake-llm';
import { startTestApp, TestApp, testMongoUri, uniqueDatabaseName } from '../support/app';
import { userToken } from '../support/tokens';
import { replyFrames, seqsOf, textOf } from '../support/reply-frames';
import { Frame, handshakeStatus, TestClient } from '../support/ws-client';

/** The Redis the test environment provides; set REDIS_TEST_URL to use another one. */
const REDIS_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379';
const CHUNKS = Array.from({ length: 20 }, (_, index) => `c${index} `);
const FULL_TEXT = CHUNKS.join('');

/**
 * What the instances of one describe block share: Redis under a fresh key prefix, a database, the
 * fake provider.
 */
function sharedEnv(label: string, fake: FakeOpenAi): { keyPrefix: string; env: Record<string, string> } {
  const keyPrefix = `test:${label}:${randomBytes(6).toString('hex')}:`;
  return {
    keyPrefix,
    env: {
      MONGO_DATABASE: uniqueDatabaseName(label),
      REDIS_URL,
      REDIS_KEY_PREFIX: keyPrefix,
      ...openAiProviderEnv(fake, { id: 'gpt', name: 'GPT fake', apiKey: 'test-key' }),
    },
  };
}

/** Deletes what the instances left in the shared Redis. */
async function deleteRedisKeys(keyPrefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${keyPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
}

/** A socket of `userId` on `app`, greeted, closed after the test (`clients`). */
async function connectGreeted(
  clients: TestClient[],
  app: TestApp,
  userId: string,
  sessionId?: string,
): Promise<TestClient> {
  const client = await TestClient.connect(app.wsUrl, { token: userToken(userId), sessionId });
  clients.push(client);
  await client.waitForType('connection_status');
  return client;
}

describe('several instances sharing Redis and MongoDB (SPEC 10)', () => {
  let a: TestApp;
  let b: TestApp;
  let fake: FakeOpenAi;
  let keyPrefix: string;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    const shared = sharedEnv('multi', fake);
    keyPrefix = shared.keyPrefix;
    const env = { ...shared.env, RATE_LIMIT: '3', MAX_CONNECTIONS_PER_USER: '2' };
    a = await startTestApp(env);
    b = await startTestApp(env);
  });
  beforeEach(() => fake.reset().script({ chunks: CHUNKS, delayMs: 25 }));
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await fake?.close();
    await deleteRedisKeys(keyPrefix);
  });

  const connect = (app: TestApp, userId: string, sessionId?: string) =>
    connectGreeted(clients, app, userId, sessionId);

  /** A session of `userId` created on A by a first message, its reply done. */
  async function sessionOn(userId: string): Promise<{ client: TestClient; sessionId: string }> {
    const client = await connect(a, userId);
    client.send({ type: 'user_message', content: 'First question' });
    const { done } = await client.waitForReply();
    return { client, sessionId: done.session_id! };
  }

  it('a socket on B gets the user_message relay and every frame of the reply streamed by A, in order, once', async () => {
    const { client: onA, sessionId } = await sessionOn('spread');
    const onB = await connect(b, 'spread', sessionId);

    onA.send({ type: 'user_message', content: 'Tell me more' });
    const relay = await onB.waitFor((frame) => frame.type === 'user_message');
    expect(relay).toMatchObject({ session_id: sessionId, content: 'Tell me more', sender: 'user' });
    const loading = await onB.waitForType('loading');
    const messageId = loading.metadata!.message_id;
    const [fromA, fromB] = await Promise.all([onA.waitForReply(messageId), onB.waitForReply(messageId)]);

    expect(fromA.text).toBe(FULL_TEXT);
    expect(fromB.text).toBe(FULL_TEXT);
    const seqs = seqsOf(fromB.frames);
    expect(seqs).toEqual(seqs.map((_, index) => index));
    expect(seqsOf(fromB.frames)).toEqual(seqsOf(fromA.frames));
    expect(fromB.frames.some((frame) => frame.metadata?.catch_up)).toBe(false);
    // The sender's own message is never echoed back to it.
    expect(onA.frames.filter((frame) => frame.type === 'user_message')).toHaveLength(0);
  });

  it('stop_generation sent on B stops the reply streaming on A (the upstream request is aborted)', async () => {
    const { client: onA, sessionId } = await sessionOn('stop-across');
    const onB = await connect(b, 'stop-across', sessionId);
    onA.send({ type: 'user_message', content: 'A long answer please' });
    const started = await onB.waitFor((frame) => frame.type === 'ai_response' && frame.metadata?.seq === '2');
    fake.closedEarly.length = 0;
    onB.send({ type: 'stop_generation', session_id: sessionId });
    const { done } = await onA.waitForReply(started.metadata!.message_id, 2_000);
    expect(done.metadata).toMatchObject({ stopped: 'true' });
    await fake.waitForClientClose(1_000);
  });

  it('a socket binding on B mid-reply gets one catch-up frame, then the live frames of A', async () => {
    const { client: onA, sessionId } = await sessionOn('late');
    const from = onA.frames.length;
    onA.send({ type: 'user_message', content: 'Go on' });
    const early = await onA.waitFor(
      (frame) => frame.type === 'ai_response' && Number(frame.metadata?.seq) >= 5,
      10_000,
      from,
    );
    const messageId = early.metadata!.message_id;
    const onB = await connect(b, 'late', sessionId);
    const { frames } = await onB.waitForReply(messageId);

    expect(frames[0].metadata).toMatchObject({ catch_up: 'true', done: 'false' });
    const catchUpSeq = Number(frames[0].metadata!.seq);
    expect(seqsOf(frames.slice(1))).toEqual(frames.slice(1).map((_, index) => catchUpSeq + 1 + index));
    expect(frames[0].content! + textOf(frames.slice(1))).toBe(FULL_TEXT);
  });

  it('shares the per-user message limit: two messages on A and two on B, the 4th is refused', async () => {
    fake.script({ chunks: ['ok'], delayMs: 0 });
    const onA = await connect(a, 'limited');
    onA.send({ type: 'user_message', content: 'one' });
    const sessionId = (await onA.waitForType('loading')).session_id!;
    const onB = await connect(b, 'limited', sessionId);
    onA.send({ type: 'user_message', content: 'two' });
    await onB.waitFor((frame) => frame.type === 'user_message' && frame.content === 'two');
    onB.send({ type: 'user_message', content: 'three' });
    await onA.waitFor((frame) => frame.type === 'user_message' && frame.content === 'three');
    onB.send({ type: 'user_message', content: 'four' });

    const refused = await onB.waitFor((frame) => frame.type === 'error');
    expect(refused.error).toMatchObject({ code: 'TOO_MANY_REQUESTS' });
    expect(refused.error!.retry_after).toBeGreaterThan(0);
    expect(refused.error!.retry_after).toBeLessThanOrEqual(60_000);
    // B handles a socket's frames in order and publishes in order: a relay of 'four' would reach A
    // before the typing indicator B's socket sends next.
    const mark = onA.frames.length;
    onB.send({ type: 'typing_indicator', metadata: { typing: 'true' } });
    await onA.waitFor((frame) => frame.type === 'typing_indicator', 5_000, mark);
    expect(onA.frames.some((frame) => frame.type === 'user_message' && frame.content === 'four')).toBe(false);
  });

  it('shares MAX_CONNECTIONS_PER_USER: one socket on each instance, a third on either gets 429', async () => {
    await connect(a, 'capped');
    const onB = await connect(b, 'capped');
    const token = userToken('capped');
    expect((await handshakeStatus(a.wsUrl, { token })).status).toBe(429);
    expect((await handshakeStatus(b.wsUrl, { token })).status).toBe(429);

    // A closed socket gives its slot back to every instance.
    await onB.close();
    let status = 0;
    for (let attempt = 0; attempt < 20 && status !== 101; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = (await handshakeStatus(a.wsUrl, { token })).status;
    }
    expect(status).toBe(101);
  });

  it('stream_resume on B replays a reply streamed on A after last_seq, then continues live', async () => {
    const first = await connect(a, 'resumer');
    first.send({ type: 'user_message', content: 'A long story please' });
    const early = await first.waitFor(
      (frame) => frame.type === 'ai_response' && Number(frame.metadata?.seq) >= 4,
    );
    const sessionId = early.session_id!;
    const messageId = early.metadata!.message_id;
    const seen = replyFrames(first, messageId);
    const lastSeq = Math.max(...seqsOf(seen));
    await first.close();
    // The reply keeps streaming on A while nobody listens.
    await new Promise((resolve) => setTimeout(resolve, 150));

    const again = await connect(b, 'resumer');
    again.send({
      type: 'stream_resume',
      session_id: sessionId,
      metadata: { message_id: messageId, last_seq: String(lastSeq) },
    });
    const { frames } = await again.waitForReply(messageId);
    const all = [...seen, ...frames];
    expect(seqsOf(all)).toEqual(all.map((_, index) => index));
    expect(textOf(all)).toBe(FULL_TEXT);

    // Once finished, a resume anywhere answers with the stored message, once, non-streaming.
    const later = await connect(b, 'resumer');
    later.send({
      type: 'stream_resume',
      session_id: sessionId,
      metadata: { message_id: messageId, last_seq: '0' },
    });
    const complete = await later.waitFor((frame) => frame.type === 'ai_response');
    expect(complete).toMatchObject({ id: messageId, content: FULL_TEXT });
    expect(complete.metadata).toMatchObject({ streaming: 'false', done: 'true' });
  });

  it('two messages sent to A and B at once give two replies that never interleave', async () => {
    const { client: onA, sessionId } = await sessionOn('racing');
    const onB = await connect(b, 'racing', sessionId);
    const before = onA.frames.length;
    const beforeB = onB.frames.length;

    onA.send({ type: 'user_message', content: 'From A' });
    onB.send({ type: 'user_message', content: 'From B' });
    const isDone = (frame: Frame) => frame.type === 'ai_response' && frame.metadata?.done === 'true';
    for (const [client, from] of [
      [onA, before],
      [onB, beforeB],
    ] as const) {
      await client.waitFor(isDone, 15_000, from);
      const firstDone = client.frames.slice(from).find(isDone)!;
      await client.waitFor(
        (frame) => isDone(frame) && frame.metadata?.message_id !== firstDone.metadata?.message_id,
        15_000,
        from,
      );
      const order = client.frames
        .slice(from)
        .filter((frame) => frame.type === 'ai_response')
        .map((frame) => frame.metadata!.message_id);
      const ids = [...new Set(order)];
      expect(ids).toHaveLength(2);
      // All frames of one reply, then all of the other.
      expect(order).toEqual([...order.filter((id) => id === ids[0]), ...order.filter((id) => id === ids[1])]);
      for (const id of ids) expect(textOf(replyFrames(client, id))).toBe(FULL_TEXT);
    }
    // The provider was asked one reply at a time: the second request came after the first ended.
    const chats = fake.requestsTo('/chat/completions');
    expect(chats).toHaveLength(3);
  });
});

/**
 * A TCP relay in front of the test database whose client-to-database direction can be held: what the
 * client sends meanwhile waits in order and goes on at `release`. An instance behind it has its
 * writes held back while it keeps answering from memory.
 */
class HoldableRelay {
  private readonly sockets = new Set<Socket>();
  private readonly waiting: { upstream: Socket; chunk: Buffer }[] = [];
  private held = false;
  private readonly server: Server;

  private constructor(target: URL) {
    this.server = createServer((client) => this.pair(client, target));
  }

  static async to(uri: string): Promise<{ relay: HoldableRelay; uri: string }> {
    const relay = new HoldableRelay(new URL(uri));
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    const relayed = new URL(uri);
    relayed.host = `127.0.0.1:${(relay.server.address() as AddressInfo).port}`;
    return { relay, uri: relayed.toString() };
  }

  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    for (const { upstream, chunk } of this.waiting.splice(0)) upstream.write(chunk);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private pair(client: Socket, target: URL): void {
    const upstream = connectTcp(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      if (this.held) this.waiting.push({ upstream, chunk });
      else upstream.write(chunk);
    });
  }
}

describe('a session created on one instance and bound on another before its writes land (SPEC 10)', () => {
  let a: TestApp;
  let b: TestApp;
  let fake: FakeOpenAi;
  let relay: HoldableRelay;
  let keyPrefix: string;
  /** Called with each `find` of instance B that succeeded, by the `_id` it looked for. */
  let onFoundOnB: (id: unknown) => void = () => undefined;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    const { env, ...shared } = sharedEnv('multiearly', fake);
    keyPrefix = shared.keyPrefix;
    const relayed = await HoldableRelay.to(testMongoUri());
    relay = relayed.relay;
    a = await startTestApp({ ...env, MONGO_URI: relayed.uri });
    const direct = new URL(testMongoUri());
    direct.searchParams.set('monitorCommands', 'true');
    b = await startTestApp({ ...env, MONGO_URI: direct.toString() });
    const driver = b.app.get<Connection>(getConnectionToken()).getClient();
    const lookedFor = new Map<number, unknown>();
    driver.on('commandStarted', (event) => {
      if (event.commandName === 'find') lookedFor.set(event.requestId, event.command.filter?._id);
    });
    driver.on('commandSucceeded', (event) => {
      if (lookedFor.has(event.requestId)) onFoundOnB(lookedFor.get(event.requestId));
      lookedFor.delete(event.requestId);
    });
  });
  beforeEach(() => fake.reset().script({ chunks: CHUNKS.slice(0, 3), delayMs: 5 }));
  afterEach(async () => {
    relay.release();
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    relay?.release();
    await b?.close();
    await a?.close();
    await relay?.close();
    await fake?.close();
    await deleteRedisKeys(keyPrefix);
  });

  it("a socket on B right after A's first reply binds to that session, not to a new one", async () => {
    const onA = await connectGreeted(clients, a, 'early-mover');
    // A answers from memory; its inserts of the session and both messages wait in the relay.
    relay.hold();
    onA.send({ type: 'user_message', content: 'First question' });
    const { done, text } = await onA.waitForReply();
    expect(text).toBe(CHUNKS.slice(0, 3).join(''));
    const sessionId = done.session_id!;

    // B looks the session up and misses it (A's writes are held); only then do they go on.
    const missedOnB = new Promise<void>((resolve) => {
      onFoundOnB = (id) => {
        if (id === sessionId) resolve();
      };
    });
    const onB = await TestClient.connect(b.wsUrl, { token: userToken('early-mover'), sessionId });
    clients.push(onB);
    await missedOnB;
    relay.release();

    const greeting = await onB.waitForType('connection_status');
    expect(greeting.session_id).toBe(sessionId);
    expect(greeting.metadata?.new_session).toBeUndefined();
    // Bound: the session's next reply, streamed by A, reaches the socket on B.
    onA.send({ type: 'user_message', content: 'And then?' });
    const next = await onB.waitForReply();
    expect(next.done.session_id).toBe(sessionId);
  });
});
