import { MongoClient } from 'mongodb';
import { ContentCipher } from '@chatbox/storage';
import { startTestApp, TestApp, testMongoUri, uniqueDatabaseName } from '../support/app';
import { userToken } from '../support/tokens';

/**
 * SPEC 8 (revised): sessions of earlier versions hold their messages in a `msgs` array. At start-up
 * they are moved into `messages` (idempotently) and the array removed; the REST answers are exactly
 * what earlier versions of this service answered for the same documents.
 */
const KEY = 'm'.repeat(32);
const cipher = new ContentCipher(Buffer.from(KEY));
const GO_ID = 'a0'.repeat(16);
const OLD_ID = 'b0'.repeat(16);
const HALF_ID = 'c0'.repeat(16);
const at = (seconds: number) => new Date(Date.UTC(2024, 2, 1, 10, 0, seconds));

/** A document of the earlier Go service: no message ids or types, plaintext, no [ext] counters. */
const goSession = {
  _id: GO_ID,
  uid: 'go-user',
  nm: 'Printer trouble',
  modelId: 'gpt-4',
  msgs: [
    { content: 'my printer is on fire', ts: at(0), sender: 'user' },
    { content: 'Please step away from it.', ts: at(2), sender: 'ai' },
    {
      content: '',
      ts: at(5),
      sender: 'user',
      fileId: 'f'.repeat(32),
      fileUrl: '/chatbox/files/' + 'f'.repeat(32),
    },
  ],
  ts: at(0),
  endTs: at(60),
  dur: 60,
  lastActivity: at(5),
  adminAssisted: false,
  helpRequested: false,
  totalTokens: 30,
  maxRespTime: 900,
  avgRespTime: 800,
};

/** A document of this service before the revision: ids, types, metadata, encrypted text, counters. */
const oldSession = {
  _id: OLD_ID,
  uid: 'old-user',
  nm: cipher.encrypt('Encrypted chat'),
  nmEnc: true,
  msgs: [
    {
      id: 'u-1',
      type: 'user_message',
      content: cipher.encrypt('hello secret'),
      ts: at(10),
      sender: 'user',
      meta: { client: 'web' },
    },
    {
      id: 'a-1',
      type: 'ai_response',
      content: cipher.encrypt('hello back'),
      ts: at(11),
      sender: 'ai',
      meta: { status: 'complete', tokens: '9', model_id: 'demo' },
    },
  ],
  ts: at(10),
  lastActivity: at(11),
  adminAssisted: false,
  helpRequested: false,
  totalTokens: 9,
  promptTokens: 4,
  completionTokens: 5,
  maxRespTime: 300,
  avgRespTime: 300,
  respTimeSum: 300,
  respCount: 1,
  msgCount: 2,
};

/** Interrupted half-way by an earlier start: one message already copied, the array still there. */
const halfSession = {
  ...oldSession,
  _id: HALF_ID,
  uid: 'half-user',
  msgs: oldSession.msgs.map((message) => ({ ...message, id: `half-${message.id}` })),
};

/** What GET /sessions/:id answered before the revision (message ids derived from position when absent). */
const expectedGoMessages = [
  {
    id: `${GO_ID}-0`,
    type: 'user_message',
    content: 'my printer is on fire',
    timestamp: at(0).toISOString(),
    sender: 'user',
  },
  {
    id: `${GO_ID}-1`,
    type: 'ai_response',
    content: 'Please step away from it.',
    timestamp: at(2).toISOString(),
    sender: 'ai',
  },
  {
    id: `${GO_ID}-2`,
    type: 'file_upload',
    content: '',
    timestamp: at(5).toISOString(),
    sender: 'user',
    file_id: 'f'.repeat(32),
    file_url: expect.stringMatching(new RegExp(`/chatbox/files/${'f'.repeat(32)}\\?`)),
  },
];
const expectedOldMessages = [
  {
    id: 'u-1',
    type: 'user_message',
    content: 'hello secret',
    timestamp: at(10).toISOString(),
    sender: 'user',
    metadata: { client: 'web' },
  },
  {
    id: 'a-1',
    type: 'ai_response',
    content: 'hello back',
    timestamp: at(11).toISOString(),
    sender: 'ai',
    metadata: { status: 'complete', tokens: '9', model_id: 'demo' },
  },
];

describe('migration of message arrays of earlier versions', () => {
  const database = uniqueDatabaseName('migration');
  let client: MongoClient;
  let t: TestApp | undefined;

  beforeAll(async () => {
    client = await MongoClient.connect(testMongoUri());
    const db = client.db(database);
    await db.collection('sessions').insertMany([goSession, oldSession, halfSession] as never[]);
    await db.collection('messages').insertOne({
      _id: 'half-u-1' as never,
      sid: HALF_ID,
      uid: 'half-user',
      seq: 0,
      type: 'user_message',
      content: halfSession.msgs[0].content,
      ts: at(10),
      sender: 'user',
      meta: { client: 'web' },
    });
  });
  afterAll(async () => {
    await t?.close();
    await client.close();
  });

  async function get(path: string, user: string): Promise<any> {
    const response = await fetch(`${t!.baseUrl}${path}`, {
      headers: { Authorization: `Bearer ${userToken(user)}` },
    });
    expect(response.status).toBe(200);
    return response.json();
  }

  it('moves every message into `messages` at start-up and removes the arrays; REST answers as before', async () => {
    t = await startTestApp({ MONGO_DATABASE: database, ENCRYPTION_KEY: KEY });
    const db = client.db(database);
    expect(await db.collection('sessions').countDocuments({ msgs: { $exists: true } })).toBe(0);
    expect(await db.collection('messages').countDocuments({ sid: GO_ID })).toBe(3);
    expect(await db.collection('messages').countDocuments({ sid: OLD_ID })).toBe(2);
    expect(await db.collection('messages').countDocuments({ sid: HALF_ID })).toBe(2);
    // Copied as stored: ciphertext stays ciphertext.
    const copied = await db.collection('messages').findOne({ _id: 'u-1' as never });
    expect(copied).toMatchObject({
      sid: OLD_ID,
      uid: 'old-user',
      seq: 0,
      content: oldSession.msgs[0].content,
    });

    const go = await get(`/sessions/${GO_ID}`, 'go-user');
    expect(go).toMatchObject({
      session_id: GO_ID,
      name: 'Printer trouble',
      model_id: 'gpt-4',
      is_active: false,
    });
    expect(go.messages).toEqual(expectedGoMessages);
    const old = await get(`/sessions/${OLD_ID}`, 'old-user');
    expect(old).toMatchObject({ session_id: OLD_ID, name: 'Encrypted chat' });
    expect(old.messages).toEqual(expectedOldMessages);
    const half = await get(`/sessions/${HALF_ID}`, 'half-user');
    expect(half.messages.map((m: { id: string }) => m.id)).toEqual(['half-u-1', 'half-a-1']);

    // Session rows: message counts and figures as earlier versions showed them.
    const goRow = (await get('/sessions', 'go-user')).sessions[0];
    expect(goRow).toMatchObject({
      message_count: 3,
      total_tokens: 30,
      max_response_time: 900,
      avg_response_time: 800,
    });
    const oldRow = (await get('/sessions', 'old-user')).sessions[0];
    expect(oldRow).toMatchObject({ message_count: 2, total_tokens: 9, avg_response_time: 300 });
  });

  it('is idempotent: a second start changes nothing, and the conversation continues after the old messages', async () => {
    await t!.close({ keepDatabase: true });
    t = await startTestApp({ MONGO_DATABASE: database, ENCRYPTION_KEY: KEY });
    const db = client.db(database);
    expect(await db.collection('messages').countDocuments({ sid: { $in: [GO_ID, OLD_ID, HALF_ID] } })).toBe(
      7,
    );
    expect((await get(`/sessions/${GO_ID}`, 'go-user')).messages).toEqual(expectedGoMessages);

    const { TestClient } = await import('../support/ws-client');
    const socket = await TestClient.connect(t.wsUrl, { token: userToken('old-user'), sessionId: OLD_ID });
    try {
      await socket.waitForType('connection_status');
      socket.send({ type: 'user_message', content: 'still there?' });
      await socket.waitForReply();
    } finally {
      await socket.close();
    }
    const stored = await t.stored(OLD_ID);
    expect(stored!.msgs.map((m) => m.id).slice(0, 2)).toEqual(['u-1', 'a-1']);
    expect(stored!.msgs.map((m) => m.seq)).toEqual([0, 1, 2, 3]);
    expect(stored!.msgCount).toBe(4);
  });
});
