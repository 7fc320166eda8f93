/**
 * Issue 13: text the database cannot store. PostgreSQL (under FerretDB) refuses U+0000 in jsonb, so
 * an id or a text holding one used to reach a database lookup or insert and come back as
 * INTERNAL_ERROR / 500. The edge refuses it instead: ids outside their alphabet and free text with
 * U+0000 or a lone surrogate are a validation error naming the field (INVALID_FORMAT on the socket,
 * 400 BAD_REQUEST on REST), and nothing is stored. Runs against the real test FerretDB.
 */
import { startTestApp, TestApp } from '../support/app';
import { PNG, uploadFile } from '../support/files-suite';
import { adminToken, signClaims, userToken } from '../support/tokens';
import { Frame, greetedClient, handshakeStatus, TestClient } from '../support/ws-client';

const NUL = '\u0000';
const LONE_SURROGATE = '\ud800';

describe('text the database cannot store is refused at the edge', () => {
  let t: TestApp;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    t = await startTestApp({ RATE_LIMIT: '1000' });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => t?.close());

  const connect = (userId: string, sessionId?: string) => greetedClient(t.wsUrl, userId, clients, sessionId);

  /** The error answering `frame`, or the first frame after it when no error came before its pong. */
  async function answerTo(client: TestClient, frame: unknown): Promise<Frame[]> {
    const before = client.frames.length;
    client.send(frame);
    await client.roundTrip();
    return client.frames.slice(before).filter((answer) => answer.type !== 'pong');
  }

  async function sessionOf(userId: string): Promise<string> {
    const client = await connect(userId);
    client.send({ type: 'user_message', content: 'A first message.' });
    const { done } = await client.waitForReply();
    await client.close();
    return done.session_id!;
  }

  describe('socket frames', () => {
    it.each([
      [
        'a session_id with U+0000',
        { type: 'user_message', content: 'hi', session_id: `abc${NUL}` },
        'session_id',
      ],
      ['a session_id with a space', { type: 'user_message', content: 'hi', session_id: 'a b' }, 'session_id'],
      [
        'a session_id with a lone surrogate',
        { type: 'ping', session_id: `a${LONE_SURROGATE}` },
        'session_id',
      ],
      ['content with U+0000', { type: 'user_message', content: `hello${NUL}world` }, 'content'],
      [
        'content with a lone surrogate',
        { type: 'user_message', content: `hello${LONE_SURROGATE}` },
        'content',
      ],
      ['help_request content with U+0000', { type: 'help_request', content: `help${NUL}` }, 'content'],
      [
        'a metadata value with U+0000',
        { type: 'user_message', content: 'hi', metadata: { note: `x${NUL}` } },
        'metadata.note',
      ],
      [
        'a metadata key with U+0000',
        { type: 'user_message', content: 'hi', metadata: { [`k${NUL}`]: 'x' } },
        'metadata key',
      ],
      ['a file_id with U+0000', { type: 'file_upload', file_id: `f${NUL}` }, 'file_id'],
      ['a file_id with a slash', { type: 'voice_message', file_id: '../etc/passwd' }, 'file_id'],
      ['a model_id with U+0000', { type: 'model_select', model_id: `demo${NUL}` }, 'model_id'],
      [
        'a stream_resume message_id with U+0000',
        { type: 'stream_resume', metadata: { message_id: `m${NUL}`, last_seq: '0' } },
        'metadata.message_id',
      ],
      [
        'a typing_indicator on a session_id with U+0000',
        { type: 'typing_indicator', session_id: `s${NUL}`, metadata: { typing: 'true' } },
        'session_id',
      ],
    ])('%s → INVALID_FORMAT naming it, nothing stored', async (label, frame, field) => {
      const userId = `nul-${label.replace(/[^a-z0-9]+/gi, '-')}`;
      const client = await connect(userId);
      const answers = await answerTo(client, frame);
      expect(answers).toHaveLength(1);
      expect(answers[0]).toMatchObject({
        type: 'error',
        error: { code: 'INVALID_FORMAT', recoverable: true },
      });
      expect(answers[0].error!.message).toContain(field);
      expect(await t.db.collection('sessions').countDocuments({ uid: userId })).toBe(0);
      expect(await t.db.collection('messages').countDocuments({ uid: userId })).toBe(0);
    });

    it('a file message whose content holds U+0000 → INVALID_FORMAT, the file stays unreferenced', async () => {
      const upload = await uploadFile(t, userToken('nul-file'), { bytes: PNG, name: 'pixel.png' });
      expect(upload.status).toBe(200);
      const client = await connect('nul-file');
      const answers = await answerTo(client, {
        type: 'file_upload',
        file_id: upload.body.file_id,
        content: `look${NUL}`,
      });
      expect(answers.map((answer) => answer.error?.code)).toEqual(['INVALID_FORMAT']);
      expect(answers[0].error!.message).toContain('content');
      expect(await t.db.collection('messages').countDocuments({ uid: 'nul-file' })).toBe(0);
    });

    it('a handshake ?session_id= with U+0000 binds nothing and the socket works', async () => {
      const client = await connect('nul-handshake', `abc${NUL}`);
      const greeting = client.frames[0];
      expect(greeting).toMatchObject({ type: 'connection_status' });
      expect(greeting.session_id).toMatch(/^[0-9a-f]{32}$/);
      client.send({ type: 'user_message', content: 'Still works?' });
      const { done } = await client.waitForReply();
      expect(done.session_id).toBe(greeting.session_id);
    });

    it('an owner binding by a valid session_id still works after the checks', async () => {
      const sessionId = await sessionOf('nul-owner');
      const client = await connect('nul-owner');
      const answers = await answerTo(client, {
        type: 'typing_indicator',
        session_id: sessionId,
        metadata: { typing: 'true' },
      });
      expect(answers).toEqual([]);
      client.send({ type: 'user_message', content: 'Back again.', session_id: sessionId });
      expect((await client.waitForReply()).done.session_id).toBe(sessionId);
    });
  });

  it.each([
    ['a user_id', { user_id: `u${NUL}`, roles: [] }],
    ['a name', { user_id: 'nul-name', roles: ['admin'], name: `Boss${NUL}` }],
  ])(
    'a signed token whose %s holds U+0000 is refused (401), on the socket and on REST',
    async (_label, claims) => {
      const token = signClaims(claims);
      expect((await handshakeStatus(t.wsUrl, { token })).status).toBe(401);
      const response = await fetch(`${t.baseUrl}/sessions`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(response.status).toBe(401);
    },
  );

  describe('REST', () => {
    const user = 'nul-rest';
    const call = (path: string, method = 'GET', token = userToken(user), body?: unknown) =>
      fetch(`${t.baseUrl}${path}`, {
        method,
        headers: {
          Authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });

    it.each([
      ['GET', '/sessions/abc%00'],
      ['PATCH', '/sessions/abc%00'],
      ['DELETE', '/sessions/abc%00'],
      ['POST', '/sessions/abc%00/end'],
      ['POST', '/sessions/abc%00/share'],
      ['DELETE', '/sessions/abc%00/share'],
      ['GET', '/sessions/a%20b'],
      ['GET', '/sessions/a%2Fb'],
    ])('%s %s → 400 BAD_REQUEST naming the parameter', async (method, path) => {
      const response = await call(
        path,
        method,
        userToken(user),
        method === 'PATCH' ? { name: 'x' } : undefined,
      );
      expect(response.status).toBe(400);
      const body = (await response.json()) as { code: string; message: string };
      expect(body.code).toBe('BAD_REQUEST');
      expect(body.message).toContain('id');
    });

    it('GET /shared/<token with U+0000> → 400 naming the token', async () => {
      const response = await fetch(`${t.baseUrl}/shared/abc%00`);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { message: string }).message).toContain('token');
    });

    it.each([
      ['GET', '/admin/sessions/abc%00'],
      ['POST', '/admin/takeover/abc%00'],
      ['DELETE', '/admin/takeover/abc%00'],
      ['POST', '/admin/sessions/abc%00/resolve'],
      ['GET', '/admin/users/u%00/sessions'],
      ['GET', '/admin/sessions?user_id=u%00'],
      ['GET', '/admin/sessions?user_id_contains=u%00'],
    ])('admin %s %s → 400, never 500', async (method, path) => {
      const response = await call(path, method, adminToken('nul-admin'));
      expect(response.status).toBe(400);
      expect(((await response.json()) as { code: string }).code).toBe('BAD_REQUEST');
    });

    it.each([
      ['/files/abc%00'],
      ['/files/a%20b'],
      ['/files/abc?share_token=x%00'],
      ['/files/abc?signature=%00'],
    ])('GET %s → 400', async (path) => {
      expect((await call(path)).status).toBe(400);
    });

    it('a path that is not UTF-8 (an unpaired surrogate) → 400', async () => {
      expect((await call('/sessions/%ED%A0%80')).status).toBe(400);
    });

    it('PATCH a name with U+0000 → 400 naming name, the stored name unchanged', async () => {
      const sessionId = await sessionOf(user);
      const before = await t.stored(sessionId);
      const response = await call(`/sessions/${sessionId}`, 'PATCH', userToken(user), { name: `x${NUL}y` });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { message: string }).message).toContain('name');
      expect((await t.stored(sessionId))!.nm).toBe(before!.nm);
    });

    it('unknown ids inside the alphabet are still 404', async () => {
      expect((await call('/sessions/unknown-session-id')).status).toBe(404);
      expect((await call('/admin/sessions/abc', 'GET', adminToken('nul-admin'))).status).toBe(404);
    });
  });
});
