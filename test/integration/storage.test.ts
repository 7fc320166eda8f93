import { MongoNetworkError, MongoNetworkTimeoutError } from 'mongodb';
import {
  ConversationStore,
  isDuplicateKeyError,
  MessageDraft,
  MessageRepository,
  MongoRetry,
  SessionRecord,
  SessionRepository,
} from '@chatbox/storage';
import { startTestApp, TestApp } from '../support/app';
import { decryptDocumented } from '../support/encryption';

const KEY = 'k'.repeat(16) + 'e'.repeat(16); // 32 bytes
const OLD_KEY = 'o'.repeat(32);

function message(overrides: Partial<MessageDraft> = {}): MessageDraft {
  return {
    type: 'user_message',
    content: 'Hello there. How are you?',
    timestamp: new Date(),
    sender: 'user',
    ...overrides,
  };
}

describe('session storage on a real MongoDB-protocol server', () => {
  let t: TestApp;
  let repository: SessionRepository;
  let store: ConversationStore;

  beforeAll(async () => {
    t = await startTestApp({ ENCRYPTION_KEY: KEY, ENCRYPTION_KEYS_OLD: OLD_KEY });
    repository = t.app.get(SessionRepository);
    store = t.app.get(ConversationStore);
  });
  afterAll(async () => t?.close());

  /** A new session, written (a session nobody wrote to is never inserted). */
  function saved(input: Parameters<ConversationStore['createSession']>[0]): SessionRecord {
    const session = store.createSession(input);
    store.selectModel(session, 'demo');
    return session;
  }

  it('inserts a new session only with its first write, its name in the same insert', async () => {
    const session = store.createSession({ userId: 'lazy' });
    await store.settle();
    expect(await t.db.collection('sessions').countDocuments({ _id: session.id as never })).toBe(0);
    store.setNameOnce(session, 'Named before the first write');
    await append(session, message());
    const raw = await t.stored(session.id);
    expect(raw!.nm).not.toBeUndefined();
    expect(raw!.msgs).toHaveLength(1);
  });

  async function append(session: SessionRecord, draft: MessageDraft, counters = {}) {
    const { message: stored, written } = await store.appendMessage(session, draft, counters);
    await written;
    return stored;
  }

  it('writes exactly the stored field names of SPEC 8 (read back with the raw driver)', async () => {
    const session = store.createSession({ userId: 'alice', modelId: 'demo' });
    store.setNameOnce(session, 'Hello there.');
    await append(session, message());
    await append(
      session,
      message({ sender: 'ai', type: 'ai_response', meta: { tokens: '12', status: 'complete' } }),
      { promptTokens: 5, completionTokens: 7, responseTimeMs: 420 },
    );
    await store.end(session.id, new Date(Date.now() + 2000));
    await store.settle();

    const raw = await t.db.collection('sessions').findOne({ _id: session.id as never });
    expect(raw).not.toBeNull();
    expect(Object.keys(raw!).sort()).toEqual(
      [
        '_id',
        'uid',
        'nm',
        'nmEnc',
        'modelId',
        'ts',
        'endTs',
        'dur',
        'lastActivity',
        'adminAssisted',
        'helpRequested',
        'totalTokens',
        'promptTokens',
        'completionTokens',
        'maxRespTime',
        'avgRespTime',
        'respTimeSum',
        'respCount',
        'msgCount',
        'ctrRev',
      ].sort(),
    );
    expect(raw!._id).toMatch(/^[0-9a-f]{32}$/);
    expect(raw).not.toHaveProperty('_v');
    expect(raw).not.toHaveProperty('__v');
    expect(raw).not.toHaveProperty('msgs');
    expect(raw!.totalTokens).toBe(12);
    expect(raw!.maxRespTime).toBe(420);
    expect(raw!.avgRespTime).toBe(420);
    expect(raw!.msgCount).toBe(2);
    expect(raw!.dur).toBeGreaterThanOrEqual(1);
    expect(raw!.ts).toBeInstanceOf(Date);

    const messages = await t.db.collection('messages').find({ sid: session.id }).sort({ seq: 1 }).toArray();
    expect(messages).toHaveLength(2);
    expect(Object.keys(messages[1]).sort()).toEqual(
      ['_id', 'sid', 'uid', 'seq', 'type', 'content', 'ts', 'sender', 'meta'].sort(),
    );
    expect(messages.map((m) => [m.seq, m.sender, m.uid])).toEqual([
      [0, 'user', 'alice'],
      [1, 'ai', 'alice'],
    ]);
    expect(messages[1].meta).toEqual({ tokens: '12', status: 'complete' });
  });

  it('keeps endTs absent (not null) while a session is active', async () => {
    const session = saved({ userId: 'bob' });
    await store.settle();
    const raw = await t.db.collection('sessions').findOne({ _id: session.id as never });
    expect(raw).not.toHaveProperty('endTs');
    expect(raw).not.toHaveProperty('dur');
  });

  it('encrypts content, the name, transcriptions, file names and client metadata; server figures stay readable', async () => {
    const session = store.createSession({ userId: 'carol' });
    store.setNameOnce(session, 'Secret project');
    await append(
      session,
      message({
        type: 'voice_message',
        content: 'secret plans ✓',
        fileId: 'f'.repeat(32),
        meta: {
          transcription: 'the secret words',
          file_name: 'secret-plan.webm',
          mime_type: 'audio/webm',
          client_note: 'secret note',
        },
      }),
    );
    await store.settle();
    const rawSession = await t.db.collection('sessions').findOne({ _id: session.id as never });
    expect(rawSession!.nm).not.toContain('Secret');
    expect(rawSession!.nmEnc).toBe(true);
    expect(decryptDocumented(rawSession!.nm, KEY)).toBe('Secret project');
    const raw = await t.db.collection('messages').findOne({ sid: session.id });
    const stored = raw!.content as string;
    expect(stored).not.toContain('secret');
    expect(Buffer.from(stored, 'base64').length).toBe(12 + Buffer.byteLength('secret plans ✓') + 16);
    expect(decryptDocumented(stored, KEY)).toBe('secret plans ✓');
    expect(JSON.stringify(raw!.meta)).not.toContain('secret');
    expect(decryptDocumented(raw!.meta.transcription, KEY)).toBe('the secret words');
    expect(decryptDocumented(raw!.meta.file_name, KEY)).toBe('secret-plan.webm');
    expect(raw!.meta.mime_type).toBe('audio/webm');
    const [read] = await store.history(session.id);
    expect(read.content).toBe('secret plans ✓');
    expect(read.meta).toEqual({
      transcription: 'the secret words',
      file_name: 'secret-plan.webm',
      mime_type: 'audio/webm',
      client_note: 'secret note',
    });
  });

  it('still reads content written with an old key after rotation', async () => {
    const session = saved({ userId: 'dave' });
    await store.settle();
    const { ContentCipher } = await import('@chatbox/storage');
    const sealedWithOldKey = new ContentCipher(Buffer.from(OLD_KEY)).encrypt('before rotation');
    await t.db.collection('messages').insertOne({
      _id: 'old' as never,
      sid: session.id,
      uid: 'dave',
      seq: 0,
      type: 'user_message',
      content: sealedWithOldKey,
      ts: new Date(),
      sender: 'user',
    });
    expect((await store.history(session.id))[0].content).toBe('before rotation');
  });

  it('does not duplicate a message or its counters when an insert is retried after an ambiguous failure', async () => {
    const session = store.createSession({ userId: 'erin' });
    await store.settle();
    const retry = t.app.get(MongoRetry);
    const original = retry.run.bind(retry);
    let failedOnce = false;
    const spy = jest.spyOn(retry, 'run').mockImplementation((operation, attempt) =>
      original(operation, async () => {
        const result = await attempt();
        if (operation === 'insertMessage' && !failedOnce) {
          failedOnce = true; // the write landed, but the client never heard back
          throw new MongoNetworkError('connection reset after write');
        }
        return result;
      }),
    );
    try {
      await append(session, message({ id: 'once' }), { promptTokens: 1 });
    } finally {
      spy.mockRestore();
    }
    const raw = await t.stored(session.id);
    expect(raw!.msgs.filter((m) => m.id === 'once')).toHaveLength(1);
    expect(raw!.msgCount).toBe(1);
    expect(raw!.totalTokens).toBe(1);
    expect(failedOnce).toBe(true);
  });

  it('a history read that races a message insert still lists the message (it left the queue while the read ran)', async () => {
    const session = saved({ userId: 'racer' });
    await append(session, message({ id: 'race-first' }));
    const retry = t.app.get(MongoRetry);
    const original = retry.run.bind(retry);
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let written: Promise<unknown> | undefined;
    // The insert waits for the gate; the read runs first and returns only after the insert landed.
    const spy = jest.spyOn(retry, 'run').mockImplementation((operation, attempt) =>
      original(operation, async () => {
        if (operation === 'insertMessage') await gate;
        const result = await attempt();
        if (operation === 'listMessages') {
          openGate();
          await written;
        }
        return result;
      }),
    );
    try {
      written = (await store.appendMessage(session, message({ id: 'race-second' }), {})).written;
      const history = await store.history(session.id);
      expect(history.map((stored) => stored.id)).toEqual(['race-first', 'race-second']);
    } finally {
      openGate();
      spy.mockRestore();
    }
    await store.end(session.id); // out of the idle-session lists of the tests below
  });

  it('sends a counter update whose answer was lost again unchanged: counted once, also when the first attempt lands late', async () => {
    const session = store.createSession({ userId: 'erin2' });
    await append(session, message(), {});
    await store.settle();
    const sessions = t.app.get(SessionRepository);
    const original = sessions.applyCounters.bind(sessions);
    const lost: Parameters<SessionRepository['applyCounters']>[] = [];
    // The first attempt never reaches the database before the driver gives up on it.
    const spy = jest.spyOn(sessions, 'applyCounters').mockImplementationOnce(async (...args) => {
      lost.push(args);
      throw new MongoNetworkTimeoutError('socket timed out');
    });
    const expected = { msgCount: 2, totalTokens: 7, respCount: 1, respTimeSum: 100, avgRespTime: 100 };
    try {
      await append(
        session,
        message({
          sender: 'ai',
          type: 'ai_response',
          meta: { prompt_tokens: '3', completion_tokens: '4', response_time_ms: '100' },
        }),
        { promptTokens: 3, completionTokens: 4, responseTimeMs: 100 },
      );
      expect(await t.stored(session.id)).toMatchObject(expected);
      expect(spy).toHaveBeenCalledTimes(2);
      expect(spy.mock.calls[1]).toEqual(lost[0]);
    } finally {
      spy.mockRestore();
    }
    // Now the first attempt lands after all (a stalled database answering late): it changes nothing.
    await original(...lost[0]);
    expect(await t.stored(session.id)).toMatchObject(expected);
  });

  it('a counter update of an earlier writer that lands after the counters were rebuilt changes nothing', async () => {
    const session = store.createSession({ userId: 'erin3' });
    await append(session, message(), {});
    await store.settle();
    const sessions = t.app.get(SessionRepository);
    const before = await sessions.counterRevisionOf(session.id);
    // A write a killed process had sent: it landed, or will land, against the revision it knew.
    const late = { prev: before ?? null, next: 'late-writer' };
    // The next process replays the journal: the counters are rebuilt from the messages.
    await store.lanes.enqueue(session.id, { kind: 'reconcile' });
    await store.settle();
    const delta = {
      messages: 1,
      promptTokens: 5,
      completionTokens: 5,
      responseTimeSum: 0,
      responseCount: 0,
      maxResponseTime: 0,
    };
    expect(await sessions.applyCounters(session.id, delta, late)).toBe('conflict');
    expect(await t.stored(session.id)).toMatchObject({ msgCount: 1, totalTokens: 0 });
    await store.end(session.id); // out of the idle-session lists of the tests below
  });

  it('a new session ends the older active sessions of its user that only the database knows ', async () => {
    const earlier = new Date(Date.now() - 60_000);
    await t.db.collection('sessions').insertMany([
      { _id: 'd1'.repeat(16), uid: 'olduser-1', ts: earlier, lastActivity: earlier },
      { _id: 'd2'.repeat(16), uid: 'olduser-2', ts: earlier, lastActivity: earlier },
      { _id: 'd3'.repeat(16), uid: 'someone-else', ts: earlier, lastActivity: earlier },
    ] as never[]);
    const first = saved({ userId: 'olduser-1' });
    const second = saved({ userId: 'olduser-2' });
    store.endOtherSessions(first.id, 'olduser-1', first.startedAt);
    store.endOtherSessions(second.id, 'olduser-2', second.startedAt);
    await store.settle();
    const ended = async (id: string) =>
      (await t.db.collection('sessions').findOne({ _id: id as never }))?.endTs;
    expect(await ended('d1'.repeat(16))).toBeInstanceOf(Date);
    expect(await ended('d2'.repeat(16))).toBeInstanceOf(Date);
    expect(await ended('d3'.repeat(16))).toBeUndefined();
    expect(await ended(first.id)).toBeUndefined();
    expect(await ended(second.id)).toBeUndefined();
  });

  it('ends a session once: the first end time is kept', async () => {
    const session = saved({ userId: 'frank', at: new Date(Date.now() - 10_000) });
    const first = await store.end(session.id, new Date());
    const second = await store.end(session.id, new Date(Date.now() + 50_000));
    expect(first?.endedAt).toBeDefined();
    expect(second).toBeUndefined();
    await store.settle();
    expect((await repository.findSummary(session.id))!.endedAt).toEqual(first!.endedAt);
  });

  it('finds by user, share token and active state; lists with filters, sort and pagination', async () => {
    const older = saved({ userId: 'gina', at: new Date(Date.now() - 60_000) });
    await store.end(older.id);
    const active = saved({ userId: 'gina' });
    await store.settle();
    expect(await store.shareToken(active.id, 'share-gina')).toBe('share-gina');
    expect(await store.shareToken(active.id, 'another')).toBe('share-gina');
    expect((await store.findByShareToken('share-gina'))!.id).toBe(active.id);
    const page = await repository.list({
      filter: { userId: 'gina' },
      sortBy: 'start_time',
      sortOrder: 'asc',
      offset: 0,
      limit: 1,
    });
    expect(page.total).toBe(2);
    expect(page.sessions.map((s) => s.id)).toEqual([older.id]);
    const activeOnly = await repository.list({
      filter: { userId: 'gina', status: 'active' },
      sortBy: 'start_time',
      sortOrder: 'desc',
      offset: 0,
      limit: 10,
    });
    expect(activeOnly.sessions.map((s) => s.id)).toEqual([active.id]);
    expect(await repository.findIdleActive(new Date(Date.now() + 1000), 10)).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: active.id })]),
    );
  });

  it('enforces unique share tokens while sessions without one coexist', async () => {
    const one = saved({ userId: 'hank' });
    const two = saved({ userId: 'hank2' });
    await store.settle();
    await repository.changeFields(one.id, { set: { shareToken: 'same-token' } });
    const failure = await repository
      .changeFields(two.id, { set: { shareToken: 'same-token' } })
      .catch((error: unknown) => error);
    expect(isDuplicateKeyError(failure)).toBe(true);
  });

  it('treats operator-shaped filter values as plain strings', async () => {
    const page = await repository.list({
      filter: { userId: { $ne: 'x' } as unknown as string },
      sortBy: 'start_time',
      sortOrder: 'asc',
      offset: 0,
      limit: 10,
    });
    expect(page.total).toBe(0);
  });

  it('has the named indexes of SPEC 8: five on sessions, the active-session one, and messages by session and seq', async () => {
    const indexes = await t.db.collection('sessions').indexes();
    const byName = Object.fromEntries(indexes.map((index) => [index.name, index]));
    expect(byName.idx_user_id.key).toEqual({ uid: 1 });
    expect(byName.idx_start_time.key).toEqual({ ts: -1 });
    expect(byName.idx_admin_assisted.key).toEqual({ adminAssisted: 1 });
    expect(byName.idx_user_start_time.key).toEqual({ uid: 1, ts: -1 });
    expect(byName.idx_share_token).toMatchObject({ key: { shareToken: 1 }, unique: true });
    // FerretDB 1.24 accepts `sparse` but does not report it; its unique indexes already skip missing fields.
    const isFerretDb = 'ferretdbVersion' in (await t.db.admin().command({ buildInfo: 1 }));
    if (!isFerretDb) expect(byName.idx_share_token.sparse).toBe(true);
    expect(byName.idx_active_last_activity.key).toEqual({ endTs: 1, lastActivity: 1 });
    const messageIndexes = await t.db.collection('messages').indexes();
    expect(messageIndexes.find((index) => index.name === 'idx_msg_session_seq')?.key).toEqual({
      sid: 1,
      seq: 1,
    });
  });

  it('lands a burst of inserts from many sessions exactly once, in far fewer commands than documents', async () => {
    const messages = t.app.get(MessageRepository);
    const commands = async () =>
      Number(
        /^chatbox_mongodb_operation_seconds_count\{operation="insertMessageBatch"\} (\S+)$/m.exec(
          await (await fetch(`${t.baseUrl}/metrics/prometheus`)).text(),
        )?.[1] ?? 0,
      );
    const before = await commands();
    const sessions = Array.from({ length: 150 }, (_, i) => saved({ userId: `burst-${i}` }));
    const written = await Promise.all(
      sessions.map(async (session) => (await store.appendMessage(session, message(), {})).written),
    );
    await Promise.all(written);
    const sent = (await commands()) - before;
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(sessions.length / 2);
    const stored = await t.db
      .collection('messages')
      .find({ sid: { $in: sessions.map((session) => session.id) } })
      .toArray();
    expect(stored).toHaveLength(sessions.length);

    // Sent again (a retry, a replay) together with new ones: the stored ones stay as they are.
    const again = stored.slice(0, 20).map((document) => ({ ...document, content: 'changed' }));
    const fresh = stored
      .slice(0, 20)
      .map((document) => ({ ...document, _id: `${String(document._id)}-new` }));
    const outcomes = await Promise.all(
      [...again, ...fresh].map((document) => messages.insertDocument(document as never)),
    );
    expect(outcomes).toEqual([...Array(20).fill('duplicate'), ...Array(20).fill('added')]);
    const reread = await t.db
      .collection('messages')
      .find({ _id: { $in: again.map((document) => document._id) } })
      .toArray();
    expect(reread.map((document) => document.content)).not.toContain('changed');
    await store.settle();
  });
});
