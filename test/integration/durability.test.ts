import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getConnectionToken } from '@nestjs/mongoose';
import type { Connection } from 'mongoose';
import { ConversationStore, JournaledOp, WriteJournal } from '@chatbox/storage';
import { FakeOpenAi, startFakeOpenAi, openAiProviderEnv } from '../support/fake-llm';
import { startTestApp, storedView, TestApp, testMongoUri } from '../support/app';
import { TestDatabase } from '../support/database';
import { adminToken, userToken } from '../support/tokens';
import { Frame, TestClient } from '../support/ws-client';

/** Issue 11: nothing acknowledged is lost or doubled, under concurrency and faults (in-process app). */

const clients: TestClient[] = [];
async function connect(url: string, token: string, sessionId?: string): Promise<TestClient> {
  const client = await TestClient.connect(url, { token, sessionId });
  clients.push(client);
  await client.waitForType('connection_status');
  return client;
}
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close().catch(() => undefined)));
});

function providerEnv(fake: FakeOpenAi): Record<string, string> {
  return {
    ...openAiProviderEnv(fake, { id: 'gpt' }),
  };
}

async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const relayed = (client: TestClient, sender: string) =>
  client.frames.filter((frame) => frame.type === 'user_message' && frame.sender === sender).length;

describe('two or more writers on one session', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ RATE_LIMIT: '1000' });
  });
  afterAll(async () => t?.close());

  /** A session an admin assists (the AI stays silent, so every message is a plain write). */
  async function assistedSession(
    userId: string,
  ): Promise<{ user: TestClient; admin: TestClient; sessionId: string }> {
    const user = await connect(t.wsUrl, userToken(userId));
    user.send({ type: 'user_message', content: 'hello' });
    const { done } = await user.waitForReply();
    const sessionId = done.session_id!;
    const taken = await fetch(`${t.baseUrl}/admin/takeover/${sessionId}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${adminToken('agent')}` },
    });
    expect(taken.status).toBe(200);
    const admin = await connect(t.wsUrl, adminToken('agent'), sessionId);
    return { user, admin, sessionId };
  }

  it('user and admin sending 20 messages each in lockstep during a takeover: 40 of 40 stored', async () => {
    const { user, admin, sessionId } = await assistedSession('lockstep');
    for (let i = 0; i < 20; i++) {
      user.send({ type: 'user_message', content: `user ${i}` });
      admin.send({ type: 'user_message', content: `admin ${i}` });
    }
    await user.waitFor(() => relayed(user, 'admin') === 20, 20_000);
    await admin.waitFor(() => relayed(admin, 'user') === 20, 20_000);
    const stored = await t.stored(sessionId);
    const contents = stored!.msgs.map((m) => m.content);
    for (let i = 0; i < 20; i++) {
      expect(contents).toContain(`user ${i}`);
      expect(contents).toContain(`admin ${i}`);
    }
    expect(stored!.msgs).toHaveLength(42); // the first exchange, then 40
    expect(stored!.msgCount).toBe(42);
    expect(new Set(stored!.msgs.map((m) => m.id)).size).toBe(42);
  });

  it('three sockets of the user sending 30 messages each on one session: 90 of 90 stored, in order per socket', async () => {
    const { user, sessionId } = await assistedSession('three-tabs');
    const tabs = [
      user,
      await connect(t.wsUrl, userToken('three-tabs'), sessionId),
      await connect(t.wsUrl, userToken('three-tabs'), sessionId),
    ];
    tabs.forEach((tab, index) => {
      for (let i = 0; i < 30; i++) tab.send({ type: 'user_message', content: `tab ${index} #${i}` });
    });
    // Every tab sees the other two tabs' 60 messages.
    for (const tab of tabs) await tab.waitFor(() => relayed(tab, 'user') === 60, 20_000);
    const stored = await t.stored(sessionId);
    expect(stored!.msgs).toHaveLength(92);
    expect(stored!.msgCount).toBe(92);
    for (let index = 0; index < 3; index++) {
      const ofTab = stored!.msgs.map((m) => m.content as string).filter((c) => c.startsWith(`tab ${index} `));
      expect(ofTab).toEqual(Array.from({ length: 30 }, (_, i) => `tab ${index} #${i}`));
    }
  });
});

const FIFTY_CHUNKS = Array.from({ length: 50 }, (_, i) => `c${i} `);

describe('the hot path does not wait for the database', () => {
  const database = new TestDatabase();
  let fake: FakeOpenAi;
  let t: TestApp;
  beforeAll(async () => {
    fake = await startFakeOpenAi();
    fake.script({
      chunks: FIFTY_CHUNKS,
      usage: { prompt_tokens: 3, completion_tokens: 50 },
      // Apart in time, so they stream as several frames (deltas read together leave as one).
      delayMs: 5,
    });
    await database.start();
    t = await startTestApp({ MONGO_URI: `${database.uri}?monitorCommands=true`, ...providerEnv(fake) });
  });
  afterAll(async () => {
    await t?.close();
    await database.close();
    await fake?.close();
  });

  it('calls the provider before the user message is written (the database is stalled), then stores it once', async () => {
    // A first exchange puts the session in memory.
    const client = await connect(t.wsUrl, userToken('stalled'));
    client.send({ type: 'user_message', content: 'first' });
    const { done } = await client.waitForReply();
    await t.stored(done.session_id);
    const before = fake.requests.length;
    database.pause();
    try {
      client.send({ type: 'user_message', content: 'while the database is stalled' });
      await waitUntil(() => fake.requests.length > before, 10_000, 'the provider request');
      const second = await client.waitForReply(undefined, 15_000).then(() => client.waitForDoneAfter(done));
      expect(second.metadata!.error).toBeUndefined();
    } finally {
      database.resume();
    }
    const stored = await t.stored(done.session_id);
    expect(
      stored!.msgs.map((m) => m.content).filter((c) => c === 'while the database is stalled'),
    ).toHaveLength(1);
    expect(stored!.msgs).toHaveLength(4);
  });

  it('a new conversation reaches the provider while the database is stalled', async () => {
    const before = fake.requests.length;
    const client = await connect(t.wsUrl, userToken('stalled-new'));
    database.pause();
    try {
      client.send({ type: 'user_message', content: 'brand new' });
      await waitUntil(() => fake.requests.length > before, 10_000, 'the provider request');
      const { done } = await client.waitForReply(undefined, 15_000);
      expect(done.metadata!.error).toBeUndefined();
    } finally {
      database.resume();
    }
  });

  it('writes nothing per streamed chunk: an exchange of 50 chunks costs two inserts; the counters follow in one coalesced update', async () => {
    const client = await connect(t.wsUrl, userToken('no-chunk-writes'));
    client.send({ type: 'user_message', content: 'warm up' });
    const first = await client.waitForReply();
    await t.app.get(ConversationStore).settle();
    const connection = t.app.get<Connection>(getConnectionToken());
    const writes: string[] = [];
    const listener = (event: { commandName: string; command: Record<string, unknown> }) => {
      if (['insert', 'update', 'delete', 'findAndModify'].includes(event.commandName))
        writes.push(`${event.commandName} ${String(event.command[event.commandName])}`);
    };
    connection.getClient().on('commandStarted', listener);
    try {
      client.send({ type: 'user_message', content: 'fifty chunks please' });
      const reply = await client
        .waitForReply(undefined, 15_000)
        .then(() =>
          client.waitFor(
            (f) =>
              f.type === 'ai_response' &&
              f.metadata?.done === 'true' &&
              f.metadata.message_id !== first.done.metadata!.message_id,
          ),
        );
      const { frames, text } = await client.waitForReply(reply.metadata!.message_id);
      expect(text).toBe(FIFTY_CHUNKS.join(''));
      expect(frames.length).toBeGreaterThan(2);
      // A ping answered: every write the exchange queued has been sent (or is in the outbox).
      client.send({ type: 'ping' });
      await client.waitForType('pong');
      await waitUntil(() => writes.length >= 2, 5_000, 'the two inserts');
      expect([...writes].sort()).toEqual(['insert messages', 'insert messages']);
      // The counters of both messages in one update (at most every counterFlushDelayMs; now, here).
      await t.app.get(ConversationStore).settle();
    } finally {
      connection.getClient().off('commandStarted', listener);
    }
    expect(writes.sort()).toEqual(['insert messages', 'insert messages', 'update sessions']);
  });

  /** Database commands (name, collection, documents read or written) while `action` runs. */
  async function commandsDuring(action: () => Promise<unknown>): Promise<string[]> {
    const client = t.app.get<Connection>(getConnectionToken()).getClient();
    const seen: string[] = [];
    const names = new Map<number, string>();
    const started = (event: { requestId: number; commandName: string; command: Record<string, any> }) => {
      if (['insert', 'update', 'find', 'delete', 'aggregate', 'count'].includes(event.commandName))
        names.set(
          event.requestId,
          `${event.commandName} ${String(event.command[event.commandName])} ${event.command.documents?.length ?? event.command.updates?.length ?? ''}`.trim(),
        );
    };
    const succeeded = (event: { requestId: number; reply: any }) => {
      const name = names.get(event.requestId);
      if (name)
        seen.push(`${name}${event.reply?.cursor ? ` -> ${event.reply.cursor.firstBatch.length}` : ''}`);
    };
    client.on('commandStarted', started);
    client.on('commandSucceeded', succeeded);
    try {
      await action();
      await t.app.get(ConversationStore).settle();
    } finally {
      client.off('commandStarted', started);
      client.off('commandSucceeded', succeeded);
    }
    return seen.sort();
  }

  it('a 2,000-message session costs what a 10-message one does: the same commands and documents to append and to read the context', async () => {
    const store = t.app.get(ConversationStore);
    const db = await database.db(t.config.mongo.database);
    async function sessionOf(messages: number): Promise<string> {
      const session = store.createSession({ userId: `long-${messages}` });
      store.selectModel(session, 'fake');
      await store.settle();
      await db.collection('messages').insertMany(
        Array.from({ length: messages }, (_, seq) => ({
          _id: `${session.id}-${seq}` as never,
          sid: session.id,
          uid: session.userId,
          seq,
          type: seq % 2 ? 'ai_response' : 'user_message',
          content: `message ${seq} `.repeat(20),
          ts: new Date(Date.now() - (messages - seq) * 1000),
          sender: seq % 2 ? 'ai' : 'user',
        })),
      );
      await db
        .collection('sessions')
        .updateOne({ _id: session.id as never }, { $set: { msgCount: messages } });
      store.invalidate(session.id);
      return session.id;
    }
    const costs: Record<number, { read: string[]; append: string[] }> = {};
    for (const size of [10, 2_000]) {
      const sessionId = await sessionOf(size);
      // Cold: the session and its last messages are read once (the model context), then held.
      const read = await commandsDuring(() => store.recentMessages(sessionId, Number.MAX_SAFE_INTEGER, 21));
      const session = (await store.findSession(sessionId))!;
      const append = await commandsDuring(() =>
        store.appendMessage(
          session,
          { type: 'user_message', content: 'one more', timestamp: new Date(), sender: 'user' },
          {},
          { flush: true },
        ),
      );
      costs[size] = { read, append };
    }
    expect(costs[2_000].append).toEqual(costs[10].append);
    expect(costs[10].append).toEqual(['insert messages 1', 'update sessions 1']);
    // The same commands at both sizes; at 10 messages the window holds all of them, at 2,000 a window's worth.
    expect(costs[2_000].read.map((command) => command.replace(/ -> \d+$/, ''))).toEqual(
      costs[10].read.map((command) => command.replace(/ -> \d+$/, '')),
    );
    const documentsRead = (commands: string[]) =>
      commands.reduce((sum, command) => sum + Number(/ -> (\d+)$/.exec(command)?.[1] ?? 0), 0);
    expect(documentsRead(costs[2_000].read)).toBeLessThanOrEqual(1 + t.config.llm.historyMessages + 1 + 8);
  });
});

describe('a stalled or absent database', () => {
  const database = new TestDatabase();
  let fake: FakeOpenAi;
  let t: TestApp;
  beforeAll(async () => {
    fake = await startFakeOpenAi();
    fake.script({
      chunks: Array.from({ length: 10 }, (_, i) => `w${i} `),
      delayMs: 60,
      usage: { prompt_tokens: 5, completion_tokens: 10 },
    });
    await database.start();
    t = await startTestApp(
      { MONGO_URI: database.uri, MONGO_RETRY_ATTEMPTS: '2', RATE_LIMIT: '1000', ...providerEnv(fake) },
      { mongoSocketTimeoutMs: 1_000, outboxFlushIntervalMs: 300 },
    );
  });
  afterAll(async () => {
    await t?.close();
    await database.close();
    await fake?.close();
  });

  it('paused mid-write: every reply is stored exactly once with exact counters', async () => {
    const users = await Promise.all(
      Array.from({ length: 6 }, (_, i) => connect(t.wsUrl, userToken(`paused-${i}`))),
    );
    users.forEach((user, i) => user.send({ type: 'user_message', content: `question ${i}` }));
    // Pause while the replies stream: their writes (and the counters) meet a stalled database.
    await Promise.all(
      users.map((user) => user.waitFor((f) => f.type === 'ai_response' && f.metadata?.seq === '3')),
    );
    database.pause();
    const dones = await Promise.all(users.map((user) => user.waitForReply(undefined, 20_000)));
    await new Promise((r) => setTimeout(r, 3_000)); // the stall outlasts the socket timeout and the retries
    database.resume();
    for (const { done } of dones) expect(done.metadata!.error).toBeUndefined();
    await waitUntil(
      async () => (await t.app.get(ConversationStore).settle(Date.now() + 1_000)) === 0,
      30_000,
      'the outbox to drain',
    );
    const db = await database.db(t.config.mongo.database);
    for (const { done, text } of dones) {
      const stored = await storedView(db, done.session_id);
      expect(stored!.msgs.map((m) => m.sender)).toEqual(['user', 'ai']);
      expect(stored!.msgs[1].content).toBe(text);
      expect(stored).toMatchObject({
        msgCount: 2,
        totalTokens: 15,
        promptTokens: 5,
        completionTokens: 10,
        respCount: 1,
      });
    }
  });

  it('down for 30 s: the chat goes on without errors, and everything is stored in order once it is back', async () => {
    const client = await connect(t.wsUrl, userToken('outage'));
    client.send({ type: 'user_message', content: 'before the outage' });
    const first = await client.waitForReply();
    const sessionId = first.done.session_id!;
    await database.kill();
    const downAt = Date.now();
    const answers: Frame[] = [];
    let round = 0;
    while (Date.now() - downAt < 30_000) {
      // Two at once: the second waits behind the first reply (its reply starts during the outage).
      const from = client.frames.length;
      client.send({ type: 'user_message', content: `during ${round} a` });
      client.send({ type: 'user_message', content: `during ${round} b` });
      for (let reply = 0; reply < 2; reply++) {
        const done = await client.waitFor(
          (f) =>
            f.type === 'ai_response' &&
            f.metadata?.done === 'true' &&
            !answers.includes(f) &&
            f.metadata.message_id !== first.done.metadata!.message_id,
          20_000,
          from,
        );
        answers.push(done);
      }
      round++;
      if (round === 1)
        await waitUntil(
          async () => (await fetch(`${t.baseUrl}/readyz`)).status === 503,
          10_000,
          'readiness to turn 503',
        );
      await new Promise((r) => setTimeout(r, 4_000));
    }
    expect(client.ofType('error')).toEqual([]);
    for (const done of answers) expect(done.metadata!.error).toBeUndefined();
    await database.start();
    await waitUntil(
      async () => (await t.app.get(ConversationStore).settle(Date.now() + 1_000)) === 0,
      30_000,
      'the outbox to drain',
    );
    const stored = await storedView(await database.db(t.config.mongo.database), sessionId);
    const expected = ['before the outage'];
    for (let r = 0; r < round; r++) expected.push(`during ${r} a`, `during ${r} b`);
    expect(stored!.msgs.filter((m) => m.sender === 'user').map((m) => m.content)).toEqual(expected);
    // Each question is followed by its answer: the replies took their places in order.
    expect(stored!.msgs.map((m) => m.sender)).toEqual(
      expected.flatMap(() => ['user', 'ai']).slice(0, stored!.msgs.length),
    );
    expect(stored!.msgs).toHaveLength(expected.length * 2);
    expect(stored!.msgCount).toBe(expected.length * 2);
    expect(stored!.totalTokens).toBe(expected.length * 15);
  }, 90_000);
});

describe('the database refusing: DATABASE_ERROR (503), never INTERNAL_ERROR (500), and every loading ends', () => {
  const database = new TestDatabase();
  let fake: FakeOpenAi;
  let t: TestApp;
  const admin = adminToken('refused-admin');
  /** Database commands that succeeded, by name and collection, with a hook run as each arrives. */
  let onSucceeded: (command: string) => void = () => undefined;

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    await database.start();
    t = await startTestApp(
      {
        // A stalled database fails each operation within about a second (connections included).
        MONGO_URI: `${database.uri}?monitorCommands=true&connectTimeoutMS=1000`,
        MONGO_RETRY_ATTEMPTS: '1',
        RATE_LIMIT: '1000',
        ...providerEnv(fake),
      },
      // A tiny outbox, so a short outage fills it; a checkpoint interval the script below can place.
      {
        mongoSocketTimeoutMs: 1_000,
        outboxFlushIntervalMs: 300,
        outboxCapacity: 3,
        replyCheckpointIntervalMs: 1_500,
      },
    );
    const client = t.app.get<Connection>(getConnectionToken()).getClient();
    const names = new Map<number, string>();
    client.on('commandStarted', (event) =>
      names.set(event.requestId, `${event.commandName} ${String(event.command[event.commandName])}`),
    );
    client.on('commandSucceeded', (event) => onSucceeded(names.get(event.requestId) ?? ''));
  });
  afterAll(async () => {
    database.resume();
    await t?.close();
    await database.close();
    await fake?.close();
  });

  const rest = (path: string, method: string, token: string) =>
    fetch(`${t.baseUrl}${path}`, { method, headers: { Authorization: `Bearer ${token}` } });

  /** A session with one exchange, everything written (its lane idle). */
  async function conversation(userId: string): Promise<{ user: TestClient; sessionId: string }> {
    // The reply waits until the message's writes have landed: the tiny outbox has no place left before.
    let written!: () => void;
    fake.script({
      chunks: ['fine ', 'thanks'],
      answerAfter: new Promise<void>((resolve) => (written = resolve)),
    });
    const user = await connect(t.wsUrl, userToken(userId));
    user.send({ type: 'user_message', content: 'hello' });
    await user.waitForType('loading');
    await t.app.get(ConversationStore).settle();
    written();
    const { done } = await user.waitForReply();
    expect(done.metadata!.error).toBeUndefined();
    await t.stored(done.session_id);
    return { user, sessionId: done.session_id! };
  }

  it('takeover, share, unshare and admin_leave while the database stalls', async () => {
    const { sessionId } = await conversation('refused-rest');
    // Share and unshare: the database stalls before the request.
    database.pause();
    try {
      const shared = await rest(`/sessions/${sessionId}/share`, 'POST', userToken('refused-rest'));
      expect(shared.status).toBe(503);
      expect(await shared.json()).toMatchObject({ code: 'DATABASE_ERROR' });
      const unshared = await rest(`/sessions/${sessionId}/share`, 'DELETE', userToken('refused-rest'));
      expect(unshared.status).toBe(503);
    } finally {
      database.resume();
    }

    // Takeover: the lock is taken, then the database stalls before the session is marked assisted.
    onSucceeded = (command) => {
      if (command.startsWith('insert sessions_takeover_locks')) database.pause();
    };
    try {
      const taken = await rest(`/admin/takeover/${sessionId}`, 'POST', admin);
      expect(taken.status).toBe(503);
      expect(await taken.json()).toMatchObject({ code: 'DATABASE_ERROR' });
    } finally {
      onSucceeded = () => undefined;
      database.resume();
    }

    // The same admin again, with the database back: taken; then admin_leave while it stalls.
    expect((await rest(`/admin/takeover/${sessionId}`, 'POST', admin)).status).toBe(200);
    const assisting = await connect(t.wsUrl, admin, sessionId);
    await t.stored(sessionId);
    database.pause();
    try {
      assisting.send({ type: 'admin_leave' });
      const refused = await assisting.waitForType('error', 20_000);
      expect(refused.error).toMatchObject({ code: 'DATABASE_ERROR', recoverable: true });
    } finally {
      database.resume();
    }
    // Back: the leave goes through, and the assist is logged once.
    assisting.send({ type: 'admin_leave' });
    await assisting.waitForType('admin_leave', 20_000);
    const stored = await t.stored(sessionId);
    expect(stored!.assists).toHaveLength(1);
    expect(stored).not.toHaveProperty('assistingSince');
  }, 90_000);

  it('a full outbox: the reply that took the last place ends cleanly and is stored; the next message gets DATABASE_ERROR, no loading', async () => {
    const { user, sessionId } = await conversation('outbox-full');
    // One chunk after 1 s, the end after 2 s: exactly one checkpoint (at 1.5 s) while it streams.
    fake.script({
      chunks: ['the only chunk'],
      delayMs: 1_000,
      usage: { prompt_tokens: 2, completion_tokens: 3 },
    });
    await t.app.get(ConversationStore).settle();
    await database.kill();
    try {
      const from = user.frames.length;
      // Three places: the user message, the checkpoint, the reply.
      user.send({ type: 'user_message', content: 'while the database is away' });
      const done = await user.waitFor(
        (f) => f.type === 'ai_response' && f.metadata?.done === 'true',
        20_000,
        from,
      );
      user.send({ type: 'user_message', content: 'one too many' });
      const refused = await user.waitFor((f) => f.type === 'error', 20_000, from);
      expect(refused.error).toMatchObject({ code: 'DATABASE_ERROR', recoverable: true });
      await user.roundTrip();

      const after = user.frames.slice(from);
      // Only the second message was refused: the stored reply's done frame carries no error.
      expect(after.filter((f) => f.type === 'error')).toHaveLength(1);
      expect(done.metadata!.error).toBeUndefined();
      // Every loading got its done frame.
      const loading = after.filter((f) => f.type === 'loading').map((f) => f.metadata!.message_id);
      expect(loading).toEqual([done.metadata!.message_id]);
    } finally {
      await database.start();
    }
    await waitUntil(
      async () => (await t.app.get(ConversationStore).settle(Date.now() + 1_000)) === 0,
      30_000,
      'the outbox to drain',
    );
    const db = await database.db(t.config.mongo.database);
    const stored = await storedView(db, sessionId);
    expect(stored!.msgs.map((m) => m.content)).toEqual([
      'hello',
      'fine thanks',
      'while the database is away',
      'the only chunk',
    ]);
    expect(stored).toMatchObject({ msgCount: 4, totalTokens: 15 + 5 });
    // The reply's checkpoint went with the write that stored it.
    expect(await db.collection('reply_checkpoints').countDocuments({ sid: sessionId })).toBe(0);
  });

  it('a read a frame needs fails: binding a session this process does not hold answers DATABASE_ERROR', async () => {
    const { sessionId } = await conversation('not-held');
    const store = t.app.get(ConversationStore);
    // As when another instance wrote to it. A write that failed after the previous test restarted
    // the database keeps the session held until it lands (settle then returns early).
    await waitUntil(
      async () => (await store.settle(Date.now() + 1_000)) === 0 && store.invalidate(sessionId),
      30_000,
      'the session to be dropped from memory',
    );
    database.pause();
    try {
      const onConnect = await TestClient.connect(t.wsUrl, { token: userToken('not-held'), sessionId });
      clients.push(onConnect);
      expect((await onConnect.waitForType('error', 20_000)).error).toMatchObject({ code: 'DATABASE_ERROR' });

      const byFrame = await TestClient.connect(t.wsUrl, { token: userToken('not-held') });
      clients.push(byFrame);
      await byFrame.waitForType('connection_status');
      byFrame.send({ type: 'user_message', session_id: sessionId, content: 'still there?' });
      expect((await byFrame.waitForType('error', 20_000)).error).toMatchObject({ code: 'DATABASE_ERROR' });
      expect(byFrame.ofType('loading')).toEqual([]);
    } finally {
      database.resume();
    }
  });
});

describe('start-up replays the journal of the previous process', () => {
  it('a checkpoint that existed only in the journal, behind many writes, is still stored as interrupted', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'chatbox-replay-'));
    const sessionId = 'e7'.repeat(16);
    const replyId = 'f8'.repeat(16);
    const at = new Date(Date.now() - 60_000);
    const message = (seq: number) => ({
      _id: `${sessionId}-${seq}`,
      sid: sessionId,
      uid: 'replayed',
      seq,
      type: seq % 2 ? 'ai_response' : 'user_message',
      content: `message ${seq}`,
      ts: new Date(at.getTime() + seq),
      sender: seq % 2 ? 'ai' : 'user',
    });
    const journal = new WriteJournal<JournaledOp>(join(dataDir, 'outbox'), 64 * 1024 * 1024);
    journal.open();
    const ops: JournaledOp[] = [
      {
        kind: 'insertSession',
        document: { _id: sessionId, uid: 'replayed', ts: at, lastActivity: at, msgCount: 0 } as never,
      },
      // Enough writes ahead of the checkpoint that they cannot all land before recovery reads.
      ...Array.from({ length: 400 }, (_, seq): JournaledOp => ({
        kind: 'insertMessage',
        document: message(seq),
      })),
      {
        kind: 'checkpoint',
        document: {
          _id: replyId,
          sid: sessionId,
          uid: 'replayed',
          owner: 'a-process-that-is-gone',
          at,
          message: { ...message(400), _id: replyId, content: 'cut short', meta: { status: 'streaming' } },
        },
      },
    ];
    journal.append(ops.map((op, index) => ({ lane: sessionId, n: index + 1, op })));
    journal.close();

    const t = await startTestApp({ DATA_DIR: dataDir });
    try {
      const client = await connect(t.wsUrl, userToken('replayed'), sessionId);
      client.send({
        type: 'stream_resume',
        session_id: sessionId,
        metadata: { message_id: replyId, last_seq: '0' },
      });
      const done = await client.waitFor((f) => f.type === 'ai_response' && f.metadata?.done === 'true');
      expect(done).toMatchObject({ content: 'cut short', metadata: { status: 'interrupted' } });
      const stored = await t.stored(sessionId);
      expect(stored!.msgs).toHaveLength(401);
      expect(stored!.msgs.at(-1)).toMatchObject({ id: replyId, meta: { status: 'interrupted' } });
      expect(stored!.msgCount).toBe(401);
      expect(await t.db.collection('reply_checkpoints').countDocuments({ _id: replyId as never })).toBe(0);
    } finally {
      await t.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('takeover state survives a restart', () => {
  it('an assist whose admin is gone with the process is released by the next process: admin_leave, the AI answers again', async () => {
    const database = testMongoUri();
    const first = await startTestApp({ MONGO_URI: database });
    const user = await connect(first.wsUrl, userToken('restart-user'));
    user.send({ type: 'user_message', content: 'I need a human' });
    const { done } = await user.waitForReply();
    const sessionId = done.session_id!;
    await fetch(`${first.baseUrl}/admin/takeover/${sessionId}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${adminToken('gone-admin')}` },
    });
    await connect(first.wsUrl, adminToken('gone-admin'), sessionId);
    // The process goes away with the admin still connected: no release deadline was ever stored.
    const raw = await first.stored(sessionId);
    expect(raw!.assistingSince).toBeInstanceOf(Date);
    expect(raw).not.toHaveProperty('assistDeadline');
    const second = await startTestApp(
      { MONGO_URI: database, MONGO_DATABASE: first.config.mongo.database },
      { adminGoneGraceMs: 500 },
    );
    try {
      // The first process counts as dead from here on: nothing of it takes part any more.
      const back = await connect(second.wsUrl, userToken('restart-user'), sessionId);
      await waitUntil(
        async () => (await second.stored(sessionId))?.assistDeadline instanceof Date,
        10_000,
        'the release deadline set at start-up',
      );
      const deadline = (await second.stored(sessionId))!.assistDeadline as Date;
      await waitUntil(() => Date.now() > deadline.getTime(), 5_000, 'the deadline to pass');
      const { TakeoverService } = await import('@chatbox/session');
      expect(await second.app.get(TakeoverService).releaseExpired()).toEqual([sessionId]);
      await back.waitForType('admin_leave');
      back.send({ type: 'user_message', content: 'anyone?' });
      const reply = await back.waitForReply();
      expect(reply.done.metadata!.error).toBeUndefined();
      const after = await second.stored(sessionId);
      expect(after).not.toHaveProperty('assistingSince');
      expect(after).toMatchObject({ adminAssisted: true });
    } finally {
      await Promise.all(clients.splice(0).map((client) => client.close().catch(() => undefined)));
      await second.close({ keepDatabase: true });
      await first.close();
    }
  });
});
