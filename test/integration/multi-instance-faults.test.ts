import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { MongoClient } from 'mongodb';
import { RedisLink, SessionCleanupService } from '@chatbox/session';
import { FakeOpenAi, startFakeOpenAi, openAiProviderEnv } from '../support/fake-llm';
import { startTestApp, storedView, testMongoUri, TestApp, uniqueDatabaseName } from '../support/app';
import { ChatboxProcess } from '../support/chatbox-process';
import { TestRedis } from '../support/redis-server';
import { userToken } from '../support/tokens';
import { until } from '../support/until';
import { replyFrames, seqsOf, textOf } from '../support/reply-frames';
import { Frame, greetedClient, handshakeStatus, TestClient } from '../support/ws-client';

/**
 * Issue 14: several instances under faults, with a Redis these tests start and kill themselves.
 * Every stream ends with a done frame, no frame is skipped, limits free up, readiness means "can
 * serve", and the session-wide rules count every instance.
 */

/** What the issue promises after an instance dies: its replies end, its slots free up. */
const WITHIN_MS = 10_000;
const LONG_REPLY = Array.from({ length: 60 }, (_, index) => `w${index} `);

/** A user's socket (kept in `clients` for clean-up), once the server greeted it. */
const connectTo = (wsUrl: string, userId: string, clients: TestClient[], sessionId?: string) =>
  greetedClient(wsUrl, userId, clients, sessionId);

/**
 * A socket bound to a session another instance created: that instance writes the session in the
 * background, so until it lands the socket is answered unbound (then it tries again).
 */
async function connectBound(
  wsUrl: string,
  userId: string,
  sessionId: string,
  clients: TestClient[],
): Promise<TestClient> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = await connectTo(wsUrl, userId, clients, sessionId);
    if (client.frames[0]?.session_id === sessionId) return client;
    await client.close();
    if (Date.now() > deadline) throw new Error(`session ${sessionId} not visible at ${wsUrl}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const isDone = (messageId: string) => (frame: Frame) =>
  frame.type === 'ai_response' && frame.metadata?.message_id === messageId && frame.metadata?.done === 'true';

/** A metric of the instance at `baseUrl` (no labels). */
async function metric(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics/prometheus`)).text();
  const line = text.split('\n').find((row) => row.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

/** Redis, asked directly (what the instances wrote), for the length of `use`. */
async function inRedis<T>(url: string, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url);
  try {
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

const sum = (counts: string[]) => counts.reduce((total, count) => total + Number(count), 0);

/** A fake provider, the private Redis started, and two in-process instances sharing both. */
async function startTwoInstances(
  redis: TestRedis,
  env: Record<string, string>,
): Promise<{ fake: FakeOpenAi; a: TestApp; b: TestApp }> {
  const fake = await startFakeOpenAi();
  await redis.start();
  const shared = { REDIS_URL: redis.url, ...openAiProviderEnv(fake, { id: 'gpt' }), ...env };
  return { fake, a: await startTestApp(shared), b: await startTestApp(shared) };
}

describe('an instance killed (kill -9) while it streams or holds sockets', () => {
  const redis = new TestRedis();
  const clients: TestClient[] = [];
  const dataDirs: string[] = [];
  const databaseName = uniqueDatabaseName('faults');
  const keyPrefix = 'test:orphans:';
  let fake: FakeOpenAi;
  let mongo: MongoClient;
  let a: ChatboxProcess;
  let b: ChatboxProcess;

  function instance(): ChatboxProcess {
    const dataDir = mkdtempSync(join(tmpdir(), 'chatbox-faults-'));
    dataDirs.push(dataDir);
    return new ChatboxProcess({
      MONGO_URI: testMongoUri(),
      MONGO_DATABASE: databaseName,
      DATA_DIR: dataDir,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: keyPrefix,
      MAX_CONNECTIONS_PER_USER: '3',
      ...openAiProviderEnv(fake, { id: 'gpt' }),
    });
  }

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    await redis.start();
    mongo = await MongoClient.connect(testMongoUri());
    a = instance();
    b = instance();
    await Promise.all([a.start(), b.start()]);
  });
  beforeEach(async () => {
    fake.reset();
    if (a.child?.exitCode !== null || a.child?.signalCode !== null) await a.start();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close().catch(() => undefined)));
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await mongo?.db(databaseName).dropDatabase();
    await mongo?.close();
    await redis.kill();
    await fake?.close();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  });

  const connect = (app: ChatboxProcess, userId: string, sessionId?: string) =>
    connectTo(app.wsUrl, userId, clients, sessionId);

  /** A long reply streaming on A, past its sixth frame. */
  async function longReplyOnA(userId: string) {
    fake.script({ chunks: LONG_REPLY, delayMs: 100 });
    const onA = await connect(a, userId);
    onA.send({ type: 'user_message', content: 'A long answer please' });
    const early = await onA.waitFor((frame) => frame.type === 'ai_response' && frame.metadata?.seq === '5');
    return { onA, sessionId: early.session_id!, messageId: early.metadata!.message_id };
  }

  /** The user's page reconnects to B and resumes after what it had from A. */
  async function resumeOnB(userId: string, sessionId: string, messageId: string, seen: Frame[]) {
    const resumer = await connectBound(b.wsUrl, userId, sessionId, clients);
    resumer.send({
      type: 'stream_resume',
      session_id: sessionId,
      metadata: { message_id: messageId, last_seq: String(Math.max(...seqsOf(seen))) },
    });
    return resumer;
  }

  it('the reply ends on every socket within 10 s with a done frame, its partial text is stored once as interrupted, a later resume answers from the buffer, then from storage', async () => {
    const { onA, sessionId, messageId } = await longReplyOnA('orphan');
    // Another device of the user, on B, follows the reply through Redis.
    const onB = await connectBound(b.wsUrl, 'orphan', sessionId, clients);
    await onB.waitFor((frame) => frame.type === 'ai_response' && Number(frame.metadata?.seq) >= 8);
    const orphansBefore = await metric(b.baseUrl, 'chatbox_orphaned_replies_total');

    await a.stop('SIGKILL');
    const killedAt = Date.now();
    const seenOnA = replyFrames(onA, messageId);
    const resumer = await resumeOnB('orphan', sessionId, messageId, seenOnA);

    const left = () => Math.max(1, WITHIN_MS - (Date.now() - killedAt));
    const doneOnB = await onB.waitFor(isDone(messageId), left());
    const doneForResumer = await resumer.waitFor(isDone(messageId), left());
    expect(doneOnB.metadata).toMatchObject({ stopped: 'true', status: 'interrupted', streaming: 'true' });
    expect(doneForResumer.metadata).toMatchObject({ status: 'interrupted' });

    // The text B's socket saw is the text A had streamed (the reply buffer has every frame).
    const framesOnB = replyFrames(onB, messageId);
    expect(framesOnB.filter((frame) => frame.metadata?.done === 'true')).toHaveLength(1);
    const partial = textOf(framesOnB);
    expect(partial.length).toBeGreaterThan(0);
    expect(LONG_REPLY.join('').startsWith(partial)).toBe(true);
    expect(partial.startsWith(textOf(seenOnA))).toBe(true);
    // The resumed socket: what it had, then the rest, each seq once, then the end.
    const resumed = [...seenOnA, ...replyFrames(resumer, messageId)];
    if (doneForResumer.metadata?.streaming === 'true') {
      expect(seqsOf(resumed)).toEqual(resumed.map((_, index) => index));
      expect(textOf(resumed)).toBe(partial);
    } else expect(doneForResumer.content).toBe(partial);

    // Stored once, as interrupted, with that text.
    const db = mongo.db(databaseName);
    let stored = await storedView(db, sessionId);
    const deadline = Date.now() + WITHIN_MS;
    while (!stored?.msgs.some((message) => message.sender === 'ai') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      stored = await storedView(db, sessionId);
    }
    const replies = stored!.msgs.filter((message) => message.sender === 'ai');
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ id: messageId, content: partial, meta: { status: 'interrupted' } });
    // B, the one survivor, ended it, once.
    expect(await metric(b.baseUrl, 'chatbox_orphaned_replies_total')).toBe(orphansBefore + 1);

    // A resume after that answers the whole message once, not streaming: while the reply buffer
    // lives (10 min), from the buffer...
    const resumeLater = async () => {
      const later = await connect(b, 'orphan', sessionId);
      later.send({
        type: 'stream_resume',
        session_id: sessionId,
        metadata: { message_id: messageId, last_seq: '0' },
      });
      const answer = await later.waitFor((frame) => frame.type === 'ai_response');
      // Its connection slot back: the user has three (MAX_CONNECTIONS_PER_USER).
      await later.close();
      return answer;
    };
    const fromBuffer = await resumeLater();
    expect(fromBuffer).toMatchObject({ id: messageId, content: partial });
    expect(fromBuffer.metadata).toMatchObject({ status: 'interrupted', streaming: 'false', done: 'true' });
    // ... and once the buffer is gone (expired, or a Redis that lost its keys), from storage.
    const bufferKey = `${keyPrefix}reply-events:${sessionId}:${messageId}`;
    expect(await inRedis(redis.url, (direct) => direct.del(bufferKey))).toBe(1);
    const fromStorage = await resumeLater();
    expect(fromStorage).toMatchObject({ id: messageId, content: partial });
    expect(fromStorage.metadata).toMatchObject({ status: 'interrupted', streaming: 'false', done: 'true' });

    // The session goes on at once on B: the dead instance's reply lock was released with the reply.
    fake.script({ chunks: ['still ', 'here'] });
    onB.send({ type: 'user_message', content: 'Are you there?' });
    const next = await onB.waitFor(
      (frame) =>
        frame.type === 'ai_response' &&
        frame.metadata?.done === 'true' &&
        frame.metadata?.message_id !== messageId,
      WITHIN_MS,
    );
    expect(next.metadata?.stopped).toBeUndefined();
    expect(textOf(replyFrames(onB, next.metadata!.message_id))).toBe('still here');
  });

  it('a stream_resume reaching another instance before the death is noticed still ends with a done frame', async () => {
    const { onA, sessionId, messageId } = await longReplyOnA('early-resume');
    await a.stop('SIGKILL');
    const killedAt = Date.now();
    const resumer = await resumeOnB('early-resume', sessionId, messageId, replyFrames(onA, messageId));
    const done = await resumer.waitFor(isDone(messageId), Math.max(1, WITHIN_MS - (Date.now() - killedAt)));
    expect(done.metadata).toMatchObject({ status: 'interrupted' });
    expect(resumer.ofType('error')).toEqual([]);
  });

  it('the connection slots a crashed instance held free up within 10 s', async () => {
    const token = userToken('slots');
    for (let index = 0; index < 3; index++) await connect(a, 'slots');
    expect((await handshakeStatus(b.wsUrl, { token })).status).toBe(429);

    await a.stop('SIGKILL');
    const killedAt = Date.now();
    let status = 429;
    while (status !== 101 && Date.now() - killedAt < WITHIN_MS) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      status = (await handshakeStatus(b.wsUrl, { token })).status;
    }
    expect(status).toBe(101);
  });
});

describe('Redis lost and back, readiness, and session-wide rules across instances', () => {
  const redis = new TestRedis();
  const clients: TestClient[] = [];
  const keyPrefix = `test:faults:${randomBytes(6).toString('hex')}:`;
  let fake: FakeOpenAi;
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    ({ fake, a, b } = await startTwoInstances(redis, {
      MONGO_DATABASE: uniqueDatabaseName('redisfaults'),
      REDIS_KEY_PREFIX: keyPrefix,
    }));
  });
  beforeEach(() => fake.reset());
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await b?.close({ keepDatabase: true });
    await a?.close();
    await redis.kill();
    await fake?.close();
  });

  const connect = (app: TestApp, userId: string, sessionId?: string) =>
    connectTo(app.wsUrl, userId, clients, sessionId);

  /** A session of `userId` started on A (its first reply done) and a second socket of it on B. */
  async function sessionOnBoth(userId: string) {
    fake.script({ chunks: ['hi'] });
    const onA = await connect(a, userId);
    onA.send({ type: 'user_message', content: 'Hello' });
    const { done } = await onA.waitForReply();
    const sessionId = done.session_id!;
    const onB = await connectBound(b.wsUrl, userId, sessionId, clients);
    // After a Redis restart each subscription comes back on its own: both directions must carry.
    await heardAcross(onB, onA);
    await heardAcross(onA, onB);
    return { onA, onB, sessionId };
  }

  /** Sends a message and waits until its reply streams (a frame of it that is not the last). */
  async function streamingOn(client: TestClient, content: string): Promise<Frame> {
    const from = client.frames.length;
    client.send({ type: 'user_message', content });
    return client.waitFor(
      (frame) =>
        frame.type === 'ai_response' && frame.metadata?.done === 'false' && frame.metadata?.seq === '1',
      10_000,
      from,
    );
  }

  /** Typing indicators from one socket until the other (on the other instance) hears one. */
  async function heardAcross(from: TestClient, to: TestClient): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const mark = to.frames.length;
      from.send({ type: 'typing_indicator', metadata: { typing: 'true' } });
      try {
        await to.waitFor((frame) => frame.type === 'typing_indicator', 250, mark);
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
    }
  }

  it('Redis killed and restarted mid-stream: the far socket gets every seq exactly once, in order; the reply still holds its queue place', async () => {
    const { onA, onB, sessionId } = await sessionOnBoth('blink');
    const chunks = Array.from({ length: 50 }, (_, index) => `b${index} `);
    fake.script({ chunks, delayMs: 100 });
    onA.send({ type: 'user_message', content: 'Talk for a while' });
    const early = await onB.waitFor((frame) => frame.type === 'ai_response' && frame.metadata?.seq === '5');
    const messageId = early.metadata!.message_id;

    await redis.kill();
    // Eight frames stream on A while Redis is gone.
    await onA.waitFor((frame) => frame.type === 'ai_response' && frame.metadata?.seq === '14');
    await redis.start();
    // The restarted Redis lost every key: A's heartbeat counts the running reply in the session's
    // shared queue bound (SERVICE_BUSY) again, while it streams.
    const queueKey = `${keyPrefix}queue:${sessionId}`;
    await inRedis(redis.url, (direct) => until(async () => sum(await direct.hvals(queueKey)) === 1, 10_000));

    const { frames, text } = await onB.waitForReply(messageId, 30_000);
    expect(seqsOf(frames)).toEqual(frames.map((_, index) => index));
    expect(text).toBe(chunks.join(''));
    expect(frames.filter((frame) => frame.metadata?.catch_up)).toEqual([]);
    const fromA = await onA.waitForReply(messageId);
    expect(seqsOf(fromA.frames)).toEqual(seqsOf(frames));
  });

  it('only the far instance’s subscription lost (a range of frames missed): it fetches them from the reply buffer, every seq once, in order, counted', async () => {
    const { onA, onB } = await sessionOnBoth('gap');
    const recoveredBefore = await metric(b.baseUrl, 'chatbox_reply_frames_recovered_total');
    const chunks = Array.from({ length: 40 }, (_, index) => `g${index} `);
    fake.script({ chunks, delayMs: 100 });
    onA.send({ type: 'user_message', content: 'Talk while B is deaf' });
    const early = await onB.waitFor((frame) => frame.type === 'ai_response' && frame.metadata?.seq === '3');
    const messageId = early.metadata!.message_id;

    // B's subscription connection is cut and kept from coming back (Redis takes no new connection)
    // while A streams five more frames: B misses them, and its next live frame is seq N+k.
    const admin = new Redis(redis.url);
    const [, maxClients] = (await admin.config('GET', 'maxclients')) as [string, string];
    try {
      const connected = Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))![1]);
      await admin.config('SET', 'maxclients', String(connected - 1));
      const subscriber = b.app.get(RedisLink).subscriber!;
      expect(await admin.client('KILL', 'ADDR', `127.0.0.1:${subscriber.stream.localPort}`)).toBe(1);
      const cut = Math.max(...seqsOf(replyFrames(onA, messageId)));
      await onA.waitFor(
        (frame) =>
          frame.type === 'ai_response' &&
          frame.metadata?.message_id === messageId &&
          Number(frame.metadata?.seq) >= cut + 5,
      );
      expect(Math.max(...seqsOf(replyFrames(onB, messageId)))).toBeLessThan(cut + 5);
    } finally {
      await admin.config('SET', 'maxclients', maxClients);
      await admin.quit();
    }

    const { frames, text } = await onB.waitForReply(messageId, 30_000);
    expect(seqsOf(frames)).toEqual(frames.map((_, index) => index));
    expect(text).toBe(chunks.join(''));
    expect(frames.filter((frame) => frame.metadata?.catch_up)).toEqual([]);
    expect(await metric(b.baseUrl, 'chatbox_reply_frames_recovered_total')).toBeGreaterThan(recoveredBefore);
  });

  it('Redis killed and restarted while a reply streams and ends: the far socket still gets all of it', async () => {
    const { onA, onB } = await sessionOnBoth('blink-end');
    const chunks = Array.from({ length: 20 }, (_, index) => `e${index} `);
    fake.script({ chunks, delayMs: 100 });
    onA.send({ type: 'user_message', content: 'A short story' });
    const early = await onB.waitFor((frame) => frame.type === 'ai_response' && frame.metadata?.seq === '3');
    const messageId = early.metadata!.message_id;

    await redis.kill();
    await onA.waitForReply(messageId);
    await redis.start();

    const { frames, text } = await onB.waitForReply(messageId, 30_000);
    expect(seqsOf(frames)).toEqual(frames.map((_, index) => index));
    expect(text).toBe(chunks.join(''));
  });

  it('readiness with Redis down: ready (the instance serves its sockets), redis degraded, chatbox_redis_up 0; back to normal after', async () => {
    const before = (await (await fetch(`${a.baseUrl}/readyz`)).json()) as any;
    expect(before.checks.redis).toMatchObject({ status: 'ready' });
    expect(await metric(a.baseUrl, 'chatbox_redis_up')).toBe(1);

    await redis.kill();
    const response = await fetch(`${a.baseUrl}/readyz`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as any;
    expect(body).toMatchObject({ status: 'ready', checks: { mongodb: { status: 'ready' } } });
    expect(body.checks.redis).toMatchObject({ status: 'degraded', error: expect.any(String) });

    // It still serves: a user on this instance chats while Redis is away.
    fake.script({ chunks: ['served ', 'anyway'] });
    const user = await connect(a, 'no-redis');
    user.send({ type: 'user_message', content: 'Anyone?' });
    const { text, done } = await user.waitForReply();
    expect(text).toBe('served anyway');
    expect(done.metadata?.error).toBeUndefined();
    expect(await metric(a.baseUrl, 'chatbox_redis_up')).toBe(0);

    await redis.start();
    let after = (await (await fetch(`${a.baseUrl}/readyz`)).json()) as any;
    const deadline = Date.now() + WITHIN_MS;
    while (after.checks.redis.status !== 'ready' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = (await (await fetch(`${a.baseUrl}/readyz`)).json()) as any;
    }
    expect(after.checks.redis).toMatchObject({ status: 'ready' });
    for (const app of [a, b]) {
      while ((await metric(app.baseUrl, 'chatbox_redis_up')) !== 1 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await metric(app.baseUrl, 'chatbox_redis_up')).toBe(1);
    }
  });

  it('SERVICE_BUSY counts the replies of the session on every instance', async () => {
    const { onA, onB, sessionId } = await sessionOnBoth('busy');
    fake.script({ chunks: LONG_REPLY, delayMs: 50 });
    await streamingOn(onA, 'one (streams on A)');
    // Three more wait on B behind A's reply: the session's four places are taken.
    for (const content of ['two', 'three', 'four']) {
      onB.send({ type: 'user_message', content });
      await onA.waitFor((frame) => frame.type === 'user_message' && frame.content === content);
    }
    onA.send({ type: 'user_message', content: 'five' });
    const refused = await onA.waitFor((frame) => frame.type === 'error');
    expect(refused).toMatchObject({ session_id: sessionId, error: { code: 'SERVICE_BUSY' } });
    expect(onB.frames.some((frame) => frame.type === 'user_message' && frame.content === 'five')).toBe(false);
    expect(onB.ofType('error')).toEqual([]);
    // The waiting replies are not started once the session has ended.
    onA.send({ type: 'end_session', session_id: sessionId });
    await onA.waitFor((frame) => frame.type === 'notification' && frame.metadata?.reason === 'session_ended');
  });

  it('the idle sweep of one instance ends no session whose reply or socket is on another', async () => {
    const { onA, onB, sessionId } = await sessionOnBoth('sweep');
    await onB.close();
    const sweepOnB = () =>
      b.app
        .get(SessionCleanupService)
        .sweep(new Date(Date.now() + b.config.session.reconnectTimeoutMs + 60_000));

    // A socket of the session on A only: B's sweep leaves the session alone.
    expect(await sweepOnB()).not.toContain(sessionId);

    // A reply streaming on A, no socket anywhere: still left alone.
    fake.script({ chunks: LONG_REPLY, delayMs: 50 });
    const streaming = await streamingOn(onA, 'Keep going while I leave');
    await onA.close();
    expect(await sweepOnB()).not.toContain(sessionId);

    // Once the reply is over and nobody is connected, the sweep ends it.
    const deadline = Date.now() + 30_000;
    let ended: string[] = [];
    while (!ended.includes(sessionId) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      ended = await sweepOnB();
    }
    expect(ended).toContain(sessionId);
    const stored = await storedView(a.db, sessionId);
    expect(stored!.msgs.some((message) => message.id === streaming.metadata!.message_id)).toBe(true);
  });
});

describe('Redis back with its keys after sockets closed and replies ended while it was away', () => {
  // Keys kept: what the instances see when only their connections to Redis were lost.
  const redis = new TestRedis({ keepKeys: true });
  const clients: TestClient[] = [];
  const keyPrefix = `test:recount:${randomBytes(6).toString('hex')}:`;
  let fake: FakeOpenAi;
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    ({ fake, a, b } = await startTwoInstances(redis, {
      MONGO_DATABASE: uniqueDatabaseName('recount'),
      REDIS_KEY_PREFIX: keyPrefix,
      MAX_CONNECTIONS_PER_USER: '3',
    }));
  });
  afterAll(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await b?.close({ keepDatabase: true });
    await a?.close();
    await redis.remove();
    await fake?.close();
  });

  const statusOn = async (app: TestApp) =>
    (await handshakeStatus(app.wsUrl, { token: userToken('recount') })).status;
  const redisUp = async (app: TestApp) => (await metric(app.baseUrl, 'chatbox_redis_up')) === 1;
  const sockets = (app: TestApp) => metric(app.baseUrl, 'chatbox_websocket_connections_total');

  it('the connection and reply-queue counts equal what is live again: a user at the limit connects again, not beyond', async () => {
    const first = await connectTo(a.wsUrl, 'recount', clients);
    fake.script({ chunks: Array.from({ length: 10 }, (_, index) => `q${index} `), delayMs: 100 });
    first.send({ type: 'user_message', content: 'Answer while Redis is away' });
    const streaming = await first.waitFor(
      (frame) => frame.type === 'ai_response' && frame.metadata?.seq === '1',
    );
    const sessionId = streaming.session_id!;
    const second = await connectTo(a.wsUrl, 'recount', clients);
    const third = await connectTo(b.wsUrl, 'recount', clients);
    expect([await statusOn(a), await statusOn(b)]).toEqual([429, 429]);

    await redis.kill();
    // Both instances know Redis is away before the sockets close: their releases cannot reach it.
    await until(async () => !(await redisUp(a)) && !(await redisUp(b)), 10_000);
    await Promise.all([second.close(), third.close()]);
    await until(async () => (await sockets(a)) === 1 && (await sockets(b)) === 0, 10_000);
    // The reply ends while Redis is away; the next one runs only after its queue place was given back.
    await first.waitForReply(streaming.metadata!.message_id);
    fake.script({ chunks: ['later'] });
    const from = first.frames.length;
    first.send({ type: 'user_message', content: 'And one more' });
    const next = await first.waitFor(
      (frame) => frame.type === 'ai_response' && frame.metadata?.done === 'true',
      15_000,
      from,
    );
    expect(textOf(replyFrames(first, next.metadata!.message_id))).toBe('later');

    await redis.start();
    // Redis still holds the counts from before (three sockets, one reply): each instance writes its
    // true ones again.
    await inRedis(redis.url, (direct) =>
      until(async () => {
        const connections = sum(await direct.hvals(`${keyPrefix}conn:recount`));
        const queue = await direct.hvals(`${keyPrefix}queue:${sessionId}`);
        return connections === 1 && queue.length === 0;
      }, WITHIN_MS),
    );
    // One socket is live: two more may connect, one on each instance, and no fourth.
    await connectTo(a.wsUrl, 'recount', clients);
    await connectTo(b.wsUrl, 'recount', clients);
    expect([await statusOn(a), await statusOn(b)]).toEqual([429, 429]);
  });
});
