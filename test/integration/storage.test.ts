import { MongoNetworkError } from 'mongodb';
import { isDuplicateKeyError, MongoRetry, SessionRepository, StoredMessage } from '@chatbox/storage';
import { startTestApp, TestApp } from '../support/app';
import { decryptDocumented } from '../support/encryption';

const KEY = 'k'.repeat(16) + 'e'.repeat(16); // 32 bytes
const OLD_KEY = 'o'.repeat(32);

function message(overrides: Partial<StoredMessage> = {}): StoredMessage {
  return {
    id: `m-${Math.random().toString(36).slice(2)}`,
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

  beforeAll(async () => {
    t = await startTestApp({ ENCRYPTION_KEY: KEY, ENCRYPTION_KEYS_OLD: OLD_KEY });
    repository = t.app.get(SessionRepository);
  });
  afterAll(async () => t?.close());

  it('writes exactly the stored field names of SPEC 8 (read back with the raw driver)', async () => {
    const session = await repository.create({ userId: 'alice', modelId: 'demo' });
    await repository.nameIfUnnamed(session.id, 'Hello there.');
    await repository.pushMessage(session.id, message({ id: 'u1' }));
    await repository.pushMessage(
      session.id,
      message({ id: 'a1', sender: 'ai', type: 'ai_response', meta: { tokens: '12', status: 'complete' } }),
      { promptTokens: 5, completionTokens: 7, responseTimeMs: 420 },
    );
    await repository.end(session.id, new Date(Date.now() + 2000));

    const raw = await t.db.collection('sessions').findOne({ _id: session.id as never });
    expect(raw).not.toBeNull();
    expect(Object.keys(raw!).sort()).toEqual(
      [
        '_id',
        'uid',
        'nm',
        'nmEnc',
        'modelId',
        'msgs',
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
      ].sort(),
    );
    expect(raw!._id).toMatch(/^[0-9a-f]{32}$/);
    expect(raw).not.toHaveProperty('_v');
    expect(raw).not.toHaveProperty('__v');
    expect(Object.keys(raw!.msgs[1]).sort()).toEqual(['content', 'id', 'meta', 'sender', 'ts', 'type']);
    expect(raw!.msgs[0]).not.toHaveProperty('_id');
    expect(raw!.totalTokens).toBe(12);
    expect(raw!.maxRespTime).toBe(420);
    expect(raw!.avgRespTime).toBe(420);
    expect(raw!.msgCount).toBe(2);
    expect(raw!.dur).toBeGreaterThanOrEqual(1);
    expect(raw!.ts).toBeInstanceOf(Date);
  });

  it('keeps endTs absent (not null) while a session is active', async () => {
    const session = await repository.create({ userId: 'bob' });
    const raw = await t.db.collection('sessions').findOne({ _id: session.id as never });
    expect(raw).not.toHaveProperty('endTs');
    expect(raw).not.toHaveProperty('dur');
  });

  it('reads a legacy document (plaintext content, no [ext] fields) correctly', async () => {
    const ts = new Date('2024-03-01T10:00:00.000Z');
    await t.db.collection('sessions').insertOne({
      _id: 'a'.repeat(32) as never,
      uid: 'legacy-user',
      nm: 'Old conversation',
      modelId: 'gpt-4',
      msgs: [
        { content: 'plain question', ts, sender: 'user' },
        { content: 'plain answer', ts: new Date(ts.getTime() + 1000), sender: 'ai' },
      ],
      ts,
      endTs: new Date(ts.getTime() + 60_000),
      dur: 60,
      lastActivity: new Date(ts.getTime() + 1000),
      adminAssisted: false,
      helpRequested: false,
      totalTokens: 30,
      maxRespTime: 900,
      avgRespTime: 800,
    });
    const legacy = await repository.findById('a'.repeat(32));
    expect(legacy).toMatchObject({
      userId: 'legacy-user',
      name: 'Old conversation',
      totalTokens: 30,
      maxResponseTimeMs: 900,
      avgResponseTimeMs: 800,
      messageCount: 2,
      durationSec: 60,
    });
    expect(legacy!.messages.map((m) => [m.sender, m.type, m.content])).toEqual([
      ['user', 'user_message', 'plain question'],
      ['ai', 'ai_response', 'plain answer'],
    ]);
    expect(legacy!.messages[0].id).toBeTruthy();
    expect(legacy!.messages[0].id).not.toBe(legacy!.messages[1].id);
  });

  it('encrypts content as base64(nonce ‖ ciphertext ‖ tag), decryptable with Node crypto', async () => {
    const session = await repository.create({ userId: 'carol' });
    await repository.pushMessage(session.id, message({ id: 'enc', content: 'secret plans ✓' }));
    const raw = await t.db.collection('sessions').findOne({ _id: session.id as never });
    const stored = raw!.msgs[0].content as string;
    expect(stored).not.toContain('secret');
    expect(Buffer.from(stored, 'base64').length).toBe(12 + Buffer.byteLength('secret plans ✓') + 16);
    expect(decryptDocumented(stored, KEY)).toBe('secret plans ✓');
    expect((await repository.findById(session.id))!.messages[0].content).toBe('secret plans ✓');
  });

  it('still reads content written with an old key after rotation', async () => {
    const session = await repository.create({ userId: 'dave' });
    const { ContentCipher } = await import('@chatbox/storage');
    const sealedWithOldKey = new ContentCipher(Buffer.from(OLD_KEY)).encrypt('before rotation');
    await t.db.collection('sessions').updateOne(
      { _id: session.id as never },
      {
        $push: { msgs: { id: 'old', content: sealedWithOldKey, ts: new Date(), sender: 'user' } } as never,
      },
    );
    expect((await repository.findById(session.id))!.messages[0].content).toBe('before rotation');
  });

  it('does not duplicate a message when a $push is retried after an ambiguous failure', async () => {
    const session = await repository.create({ userId: 'erin' });
    const retry = t.app.get(MongoRetry);
    const original = retry.run.bind(retry);
    let failedOnce = false;
    const spy = jest.spyOn(retry, 'run').mockImplementation((operation, attempt) =>
      original(operation, async () => {
        const result = await attempt();
        if (operation === 'pushMessage' && !failedOnce) {
          failedOnce = true; // the write landed, but the client never heard back
          throw new MongoNetworkError('connection reset after write');
        }
        return result;
      }),
    );
    try {
      const outcome = await repository.pushMessage(session.id, message({ id: 'once' }), { promptTokens: 1 });
      expect(['added', 'duplicate']).toContain(outcome);
    } finally {
      spy.mockRestore();
    }
    const raw = await t.db.collection('sessions').findOne({ _id: session.id as never });
    expect(raw!.msgs.filter((m: { id: string }) => m.id === 'once')).toHaveLength(1);
    expect(raw!.msgCount).toBe(1);
    expect(raw!.totalTokens).toBe(1);
    expect(failedOnce).toBe(true);
  });

  it('ends a session once: the first end time is kept', async () => {
    const session = await repository.create({ userId: 'frank', at: new Date(Date.now() - 10_000) });
    const first = await repository.end(session.id, new Date());
    const second = await repository.end(session.id, new Date(Date.now() + 50_000));
    expect(first?.endedAt).toBeDefined();
    expect(second).toBeUndefined();
    expect((await repository.findById(session.id))!.endedAt).toEqual(first!.endedAt);
  });

  it('finds by user, share token and active state; lists with filters, sort and pagination', async () => {
    const older = await repository.create({ userId: 'gina', at: new Date(Date.now() - 60_000) });
    await repository.end(older.id);
    const active = await repository.create({ userId: 'gina' });
    await repository.setFields(active.id, { shareToken: 'share-gina' });
    expect((await repository.findActiveByUser('gina'))!.id).toBe(active.id);
    expect((await repository.findByShareToken('share-gina'))!.id).toBe(active.id);
    const page = await repository.list({
      filter: { userId: 'gina' },
      sortBy: 'start_time',
      sortOrder: 'asc',
      offset: 0,
      limit: 1,
      withoutMessages: true,
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
    const one = await repository.create({ userId: 'hank' });
    const two = await repository.create({ userId: 'hank' });
    await repository.setFields(one.id, { shareToken: 'same-token' });
    const failure = await repository
      .setFields(two.id, { shareToken: 'same-token' })
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

  it('has the five named indexes of SPEC 8 and the active-session index', async () => {
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
  });
});
