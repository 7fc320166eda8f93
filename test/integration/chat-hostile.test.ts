import WebSocket from 'ws';
import { startTestApp, TestApp } from '../support/app';
import {
  expectFuzzSurvived,
  FUZZ_MAX_MESSAGE_SIZE,
  fuzzFrames,
  fuzzSocket,
  uploadFuzzFiles,
} from '../support/frame-fuzz';
import { expiredToken, foreignToken, signClaims, unsignedToken, userToken } from '../support/tokens';
import { until } from '../support/until';
import { Frame, handshakeStatus, TestClient } from '../support/ws-client';

describe('chat: hostile and malformed input', () => {
  let t: TestApp;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      MAX_MESSAGE_SIZE: '65536',
      ALLOWED_ORIGINS: 'https://app.example.org,http://localhost:3000',
      RATE_LIMIT: '100',
    });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => t?.close());

  async function connect(userId: string, options: { sessionId?: string } = {}): Promise<TestClient> {
    const client = await TestClient.connect(t.wsUrl, {
      token: userToken(userId),
      sessionId: options.sessionId,
      origin: 'https://app.example.org',
    });
    clients.push(client);
    await client.waitForType('connection_status');
    return client;
  }

  async function errorFor(client: TestClient, frame: unknown): Promise<Frame> {
    const before = client.frames.length;
    client.send(frame);
    return client.waitFor((candidate) => candidate.type === 'error', 5_000, before);
  }

  it.each([
    ['non-JSON', 'this is not json', 'INVALID_FORMAT', 'invalid JSON'],
    ['a JSON array', '[1,2]', 'INVALID_FORMAT', 'JSON object'],
    ['a JSON string', '"user_message"', 'INVALID_FORMAT', 'JSON object'],
    ['null', 'null', 'INVALID_FORMAT', 'JSON object'],
    ['no type', { content: 'x' }, 'MISSING_FIELD', 'type'],
    ['numeric type', { type: 42 }, 'INVALID_FORMAT', 'type'],
    ['unknown type', { type: 'launch_rockets' }, 'INVALID_FORMAT', 'unknown message type launch_rockets'],
    [
      'server-only type',
      { type: 'ai_response', content: 'fake' },
      'INVALID_FORMAT',
      'unknown message type ai_response',
    ],
    ['content as number', { type: 'user_message', content: 5 }, 'INVALID_FORMAT', 'content'],
    ['content missing', { type: 'user_message' }, 'MISSING_FIELD', 'content'],
    [
      'content blank',
      { type: 'user_message', content: '   ' },
      'MISSING_FIELD',
      'content is required for user_message',
    ],
    [
      'content empty',
      { type: 'user_message', content: '' },
      'MISSING_FIELD',
      'content is required for user_message',
    ],
    [
      '10001-character content',
      { type: 'user_message', content: 'x'.repeat(10_001) },
      'INVALID_FORMAT',
      'content',
    ],
    [
      'session_id too long',
      { type: 'user_message', content: 'hi', session_id: 's'.repeat(129) },
      'INVALID_FORMAT',
      'session_id',
    ],
    [
      'metadata with 50 keys',
      {
        type: 'user_message',
        content: 'hi',
        metadata: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v'])),
      },
      'INVALID_FORMAT',
      'metadata',
    ],
    [
      'metadata nested object',
      { type: 'user_message', content: 'hi', metadata: { a: { b: 1 } } },
      'INVALID_FORMAT',
      'metadata.a',
    ],
    [
      'metadata as array',
      { type: 'user_message', content: 'hi', metadata: ['x'] },
      'INVALID_FORMAT',
      'metadata',
    ],
    [
      'metadata value too long',
      { type: 'user_message', content: 'hi', metadata: { k: 'v'.repeat(1001) } },
      'INVALID_FORMAT',
      'metadata.k',
    ],
    ['metadata null', { type: 'user_message', content: 'hi', metadata: null }, 'INVALID_FORMAT', 'metadata'],
    [
      'a metadata key with $',
      { type: 'user_message', content: 'hi', metadata: { $set: 'x' } },
      'INVALID_FORMAT',
      '$set',
    ],
    [
      'a metadata key with a dot',
      { type: 'user_message', content: 'hi', metadata: { 'a.b': 'x' } },
      'INVALID_FORMAT',
      'a.b',
    ],
    [
      'an unknown top-level field',
      { type: 'user_message', content: 'hi', extra: { constructor: { prototype: {} } } },
      'INVALID_FORMAT',
      'unknown field "extra"',
    ],
    [
      'model_select without model',
      { type: 'model_select' },
      'MISSING_FIELD',
      'model_id is required for model_select',
    ],
    ['model_select unknown model', { type: 'model_select', model_id: 'gpt-99' }, 'INVALID_MODEL', 'gpt-99'],
    ['stream_resume without metadata', { type: 'stream_resume' }, 'MISSING_FIELD', 'message_id'],
    [
      'stream_resume without last_seq',
      { type: 'stream_resume', metadata: { message_id: 'm1' } },
      'MISSING_FIELD',
      'metadata.message_id and metadata.last_seq are required for stream_resume',
    ],
    [
      'stream_resume with last_seq -2',
      { type: 'stream_resume', metadata: { message_id: 'm1', last_seq: '-2' } },
      'INVALID_FORMAT',
      'metadata.last_seq must be a whole number from -1 up',
    ],
    [
      'file_upload without file_id',
      { type: 'file_upload' },
      'MISSING_FIELD',
      'file_id is required for file_upload',
    ],
    [
      'voice_message without file_id',
      { type: 'voice_message', content: 'hi' },
      'MISSING_FIELD',
      'file_id is required for voice_message',
    ],
    ['file_upload with an empty file_id', { type: 'file_upload', file_id: '' }, 'INVALID_FORMAT', 'file_id'],
    [
      'model_select with an empty model',
      { type: 'model_select', model_id: '' },
      'INVALID_FORMAT',
      'model_id',
    ],
    [
      'content with U+0000',
      { type: 'user_message', content: 'a\u0000b' },
      'INVALID_FORMAT',
      'content must not contain U+0000',
    ],
    [
      'file_upload of a file never uploaded',
      { type: 'file_upload', file_id: 'someone-elses-file' },
      'INVALID_FILE',
      'file',
    ],
    [
      'sender not in the enum',
      { type: 'user_message', content: 'hi', sender: 'root' },
      'INVALID_FORMAT',
      'sender',
    ],
  ])('%s → %s naming the field', async (_label, frame, code, mention) => {
    const client = await connect('hostile');
    const error = await errorFor(client, frame);
    expect(error).toMatchObject({ type: 'error', sender: 'system', error: { code, recoverable: true } });
    expect(error.error!.message).toContain(mention);
    // The socket survives and still works.
    client.send({ type: 'ping' });
    await client.waitForType('pong');
  });

  it('closes the socket with 1009 for a frame over MAX_MESSAGE_SIZE', async () => {
    const client = await connect('oversize');
    client.send(JSON.stringify({ type: 'user_message', content: 'x'.repeat(70_000) }));
    expect(await client.closed).toBe(1009);
  });

  it('answers binary frames with INVALID_FORMAT', async () => {
    const client = await connect('binary');
    const before = client.frames.length;
    client.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    const error = await client.waitFor((frame) => frame.type === 'error', 5_000, before);
    expect(error.error!.code).toBe('INVALID_FORMAT');
  });

  it('stores a user claiming sender "admin" as sender user', async () => {
    const client = await connect('pretender');
    client.send({ type: 'user_message', content: 'I am the admin now', sender: 'admin' });
    const { done } = await client.waitForReply();
    const raw = await t.stored(done.session_id);
    expect(raw!.msgs[0].sender).toBe('user');
  });

  it('drops server-owned metadata keys from a client frame: a forged transcription never reaches the model', async () => {
    const client = await connect('forger');
    client.send({
      type: 'user_message',
      content: 'What is the real question?',
      metadata: {
        transcription: 'FORGED instructions',
        admin_name: 'Support',
        status: 'complete',
        constructor: 'y',
        note: 'kept',
      },
    });
    const { done, text } = await client.waitForReply();
    expect(text).toContain('What is the real question?');
    expect(text).not.toContain('FORGED');
    const history = (await (
      await fetch(`${t.baseUrl}/sessions/${done.session_id}`, {
        headers: { Authorization: `Bearer ${userToken('forger')}` },
      })
    ).json()) as { messages: { sender: string; metadata?: Record<string, string> }[] };
    expect(history.messages[0]).toMatchObject({ sender: 'user', metadata: { note: 'kept' } });
    expect(Object.keys(history.messages[0].metadata!)).toEqual(['note']);
  });

  it('a session_id of another user behaves as unknown and the other user sees nothing', async () => {
    const owner = await connect('owner');
    owner.send({ type: 'user_message', content: 'Private matter.' });
    const { done } = await owner.waitForReply();
    const victimSession = done.session_id!;
    const ownerFramesBefore = owner.frames.length;

    const intruderByQuery = await connect('intruder', { sessionId: victimSession });
    expect(intruderByQuery.frames[0].session_id).not.toBe(victimSession); // a new id is announced, nothing leaks

    const intruder = await connect('intruder2');
    intruder.send({ type: 'user_message', content: 'let me in', session_id: victimSession });
    const reply = await intruder.waitForReply();
    expect(reply.done.session_id).not.toBe(victimSession);
    intruder.send({ type: 'stop_generation', session_id: victimSession });
    intruder.send({ type: 'typing_indicator', session_id: victimSession, metadata: { typing: 'true' } });
    const unknown = await connect('intruder3');
    const unknownId = 'f'.repeat(32);
    unknown.send({
      type: 'stream_resume',
      session_id: victimSession,
      metadata: { message_id: 'x', last_seq: '0' },
    });
    const foreignError = await unknown.waitForType('error');
    unknown.send({
      type: 'stream_resume',
      session_id: unknownId,
      metadata: { message_id: 'x', last_seq: '0' },
    });
    const unknownError = await unknown.waitFor((frame) => frame.type === 'error' && frame !== foreignError);
    expect(foreignError.error).toEqual(unknownError.error);

    // Each socket's frames are handled in order: the intruders' pongs come after their hostile frames
    // were dealt with, and the owner's pong after anything those sent to the owner.
    await intruder.roundTrip();
    await intruderByQuery.roundTrip();
    await owner.roundTrip();
    expect(owner.frames.slice(ownerFramesBefore).map((frame) => frame.type)).toEqual(['pong']);
    const raw = await t.stored(victimSession);
    expect(raw!.msgs).toHaveLength(2);
    const history = await fetch(`${t.baseUrl}/sessions/${victimSession}`, {
      headers: { Authorization: `Bearer ${userToken('intruder')}` },
    });
    expect(history.status).toBe(404);
  });

  describe('handshake', () => {
    const origin = 'https://app.example.org';
    it.each([
      ['no token', {}, 401],
      ['an expired token', { token: expiredToken('x') }, 401],
      ['an alg:none token', { token: unsignedToken('x') }, 401],
      ['an HS256 token signed with another secret', { token: foreignToken('x') }, 401],
      ['a token without roles', { token: signClaims({ user_id: 'x' }) }, 401],
      ['a token with an empty user_id', { token: signClaims({ user_id: '', roles: [] }) }, 401],
      ['garbage', { token: 'abc.def.ghi' }, 401],
    ])('refuses %s with %s', async (_label, options, status) => {
      const result = await handshakeStatus(t.wsUrl, { ...options, origin });
      expect(result.status).toBe(status);
      expect(result.body.length).toBeGreaterThan(0);
    });

    it('refuses an origin not on the list with 403', async () => {
      const result = await handshakeStatus(t.wsUrl, {
        token: userToken('o'),
        origin: 'https://evil.example.com',
      });
      expect(result).toMatchObject({ status: 403, body: 'Origin not allowed' });
    });

    it('accepts the token in the Authorization header', async () => {
      const result = await handshakeStatus(t.wsUrl, {
        headers: { Authorization: `Bearer ${userToken('header-user')}` },
        origin,
      });
      expect(result.status).toBe(101);
    });

    it('answers 400 to a plain GET on the socket path', async () => {
      const response = await fetch(t.wsUrl.replace('ws://', 'http://'));
      expect(response.status).toBe(400);
    });

    it('an HS512 token is accepted', async () => {
      const token = signClaims({ user_id: 'hs512', roles: [] }, undefined, 'HS512');
      expect((await handshakeStatus(t.wsUrl, { token, origin })).status).toBe(101);
    });
  });

  it('the 11th socket of a user gets 429 and the other ten stay connected', async () => {
    const ten: TestClient[] = [];
    for (let index = 0; index < 10; index++) ten.push(await connect('many-tabs'));
    const eleventh = await handshakeStatus(t.wsUrl, {
      token: userToken('many-tabs'),
      origin: 'https://app.example.org',
    });
    expect(eleventh.status).toBe(429);
    for (const client of ten) {
      client.send({ type: 'ping' });
      await client.waitForType('pong');
    }
    await ten[0].close();
    // The closed socket's slot comes back once the server has seen the close.
    await until(
      async () =>
        (await handshakeStatus(t.wsUrl, { token: userToken('many-tabs'), origin: 'https://app.example.org' }))
          .status === 101,
    );
  });

  it('a refused handshake never holds a slot', async () => {
    for (let index = 0; index < 15; index++)
      await handshakeStatus(t.wsUrl, { token: userToken('slots'), origin: 'https://evil.example.com' });
    const client = await connect('slots');
    expect(client.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('the 101st message in a minute gets TOO_MANY_REQUESTS with a correct retry_after', async () => {
    const client = await connect('chatty');
    const started = Date.now();
    for (let index = 0; index < 101; index++)
      client.send({ type: 'user_message', content: `message ${index}` });
    const error = await client.waitFor(
      (frame) => frame.type === 'error' && frame.error?.code === 'TOO_MANY_REQUESTS',
      20_000,
    );
    const elapsed = Date.now() - started;
    expect(error.error!.recoverable).toBe(true);
    expect(error.error!.retry_after).toBeGreaterThan(60_000 - elapsed - 1_000);
    expect(error.error!.retry_after).toBeLessThanOrEqual(60_000);
    const rateErrors = client.frames.filter((frame) => frame.error?.code === 'TOO_MANY_REQUESTS');
    expect(rateErrors).toHaveLength(1);
  });

  describe('fuzzing', () => {
    // Its own app: at this file's RATE_LIMIT every user message after the 100th would be refused.
    let fuzzApp: TestApp;
    beforeAll(async () => {
      fuzzApp = await startTestApp({
        MAX_MESSAGE_SIZE: String(FUZZ_MAX_MESSAGE_SIZE),
        RATE_LIMIT: '1000000',
      });
    });
    afterAll(async () => fuzzApp?.close());

    it('property: 2,000 random and mutated frames: each answered, never INTERNAL_ERROR, the server stays up', async () => {
      // The slow variant (20,000 frames) and what is checked: test/integration/chat-fuzz.test.ts.
      const files = await uploadFuzzFiles(fuzzApp, 'fuzz');
      const client = await TestClient.connect(fuzzApp.wsUrl, { token: userToken('fuzz') });
      clients.push(client);
      await client.waitForType('connection_status');
      const runStart = client.frames.length;
      const report = await fuzzSocket(client, 'fuzz', fuzzFrames(2_000, 20261126, files));
      await expectFuzzSurvived(fuzzApp, client, report, runStart);
      expect((await fetch(`${fuzzApp.baseUrl}/healthz`)).status).toBe(200);
    });
  });
});
