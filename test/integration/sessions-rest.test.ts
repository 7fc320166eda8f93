import { ConversationStore } from '@chatbox/storage';
import { startTestApp, TestApp } from '../support/app';
import { adminToken, expiredToken, userToken } from '../support/tokens';
import { until } from '../support/until';
import { TestClient } from '../support/ws-client';

describe('REST: sessions, sharing and models', () => {
  let t: TestApp;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    t = await startTestApp({ PUBLIC_RATE_LIMIT: '5' });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => t?.close());

  function get(path: string, token?: string): Promise<Response> {
    return fetch(`${t.baseUrl}${path}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  }
  function post(path: string, token: string, method = 'POST'): Promise<Response> {
    return fetch(`${t.baseUrl}${path}`, { method, headers: { Authorization: `Bearer ${token}` } });
  }

  /** A finished conversation through the real socket; returns its session id. */
  async function converse(userId: string, text: string): Promise<string> {
    const client = await TestClient.connect(t.wsUrl, { token: userToken(userId) });
    clients.push(client);
    await client.waitForType('connection_status');
    client.send({ type: 'user_message', content: text });
    const { done } = await client.waitForReply();
    return done.session_id!;
  }

  it('connection_status announces the id of the next session; nothing is stored until the first message, which takes it', async () => {
    const client = await TestClient.connect(t.wsUrl, { token: userToken('adopter') });
    clients.push(client);
    const greeting = await client.waitForType('connection_status');
    const announced = greeting.session_id!;
    expect(announced).toMatch(/^[0-9a-f]{32}$/);
    // Nothing stored yet: a ping answered proves the greeting's work is done.
    await client.roundTrip();
    await t.app.get(ConversationStore).settle();
    expect(await t.db.collection('sessions').countDocuments({ _id: announced as never })).toBe(0);
    // A client that adopted it (as old clients do) sends it back: the session is created under it.
    client.send({ type: 'user_message', session_id: announced, content: 'first words' });
    const { done } = await client.waitForReply();
    expect(done.session_id).toBe(announced);
    expect((await t.stored(announced))!.msgs.map((m) => m.content)).toContain('first words');
    // Another socket of the same user gets its own announced id, never this one again.
    const other = await TestClient.connect(t.wsUrl, { token: userToken('adopter') });
    clients.push(other);
    expect((await other.waitForType('connection_status')).session_id).not.toBe(announced);
  });

  it('a client of the old protocol (random session_id, numeric metadata, no model_select) gets an answer and adopts the real id', async () => {
    const client = await TestClient.connect(t.wsUrl, { token: userToken('legacy-client') });
    clients.push(client);
    await client.waitForType('connection_status');
    const invented = 'client-made-up-session-1234';
    client.send({
      type: 'user_message',
      session_id: invented,
      content: 'Hi from an old app!',
      metadata: { client_version: 3, beta: true },
    });
    const loading = await client.waitForType('loading');
    expect(loading.session_id).toMatch(/^[0-9a-f]{32}$/);
    expect(loading.session_id).not.toBe(invented);
    const { done, text } = await client.waitForReply();
    expect(text.length).toBeGreaterThan(0);
    client.send({ type: 'user_message', session_id: done.session_id, content: 'second' });
    const second = await client.waitForDoneAfter(done);
    expect(second.session_id).toBe(done.session_id);
    const raw = await t.stored(done.session_id);
    expect(raw!.msgs[0].meta).toEqual({ client_version: '3', beta: 'true' });
    expect(await t.db.collection('sessions').countDocuments({ _id: invented as never })).toBe(0);
  });

  it('GET /sessions lists own sessions newest activity first with the row shape', async () => {
    const first = await converse('lister', 'First topic?');
    const second = await converse('lister', 'Second topic!');
    await converse('someone-else', 'Not yours.');
    const response = await get('/sessions', userToken('lister'));
    expect(response.status).toBe(200);
    const body = (await response.json()) as any;
    expect(body).toMatchObject({ user_id: 'lister', count: 2, limit: 100, truncated: false });
    expect(body.sessions.map((row: any) => row.id)).toEqual([second, first]);
    const [newest, older] = body.sessions;
    expect(newest).toEqual({
      id: second,
      session_id: second,
      user_id: 'lister',
      name: 'Second topic!',
      model_id: '',
      last_activity: expect.stringMatching(/Z$/),
      message_count: 2,
      admin_assisted: false,
      help_requested: false,
      start_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      is_active: true,
      duration: expect.any(Number),
      total_tokens: expect.any(Number),
      max_response_time: expect.any(Number),
      avg_response_time: expect.any(Number),
    });
    // Starting the second conversation ended the first (one active session per user).
    expect(older).toMatchObject({ is_active: false, end_time: expect.any(String) });
  });

  it('GET /sessions/:id: owner and admins read; anyone else gets 404 like an unknown id', async () => {
    const id = await converse('reader', 'Readable?');
    expect((await get(`/sessions/${id}`, userToken('reader'))).status).toBe(200);
    expect((await get(`/sessions/${id}`, adminToken('boss'))).status).toBe(200);
    const foreign = await get(`/sessions/${id}`, userToken('stranger'));
    const unknown = await get(`/sessions/${'0'.repeat(32)}`, userToken('stranger'));
    expect(foreign.status).toBe(404);
    expect(await foreign.json()).toEqual(await unknown.json());
    expect(await (await get(`/sessions/${'0'.repeat(32)}`, userToken('stranger'))).json()).toEqual({
      error: 'Session not found',
      code: 'NOT_FOUND',
      message: 'Session not found',
    });
  });

  it('POST /sessions/:id/end is owner-only and idempotent (the first end time is kept)', async () => {
    const id = await converse('ender', 'End me.');
    expect((await post(`/sessions/${id}/end`, adminToken('boss'))).status).toBe(404);
    expect((await post(`/sessions/${id}/end`, userToken('other'))).status).toBe(404);
    const first = await post(`/sessions/${id}/end`, userToken('ender'));
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ status: 'ended' });
    const endTs: Date = (await t.stored(id))!.endTs;
    // A second end time would differ from the first once the clock has moved on.
    await until(() => Date.now() > endTs.getTime());
    expect((await post(`/sessions/${id}/end`, userToken('ender'))).status).toBe(200);
    const raw = await t.stored(id);
    expect(raw!.endTs).toEqual(endTs);
    expect(typeof raw!.dur).toBe('number');
  });

  it('an ended session is read-only: a frame bound to it cannot add messages', async () => {
    const id = await converse('readonly', 'Finish.');
    await post(`/sessions/${id}/end`, userToken('readonly'));
    const client = await TestClient.connect(t.wsUrl, { token: userToken('readonly'), sessionId: id });
    clients.push(client);
    const status = await client.waitForType('connection_status');
    // Not bound to the ended session: the greeting announces a new one instead.
    expect(status.session_id).not.toBe(id);
    client.send({ type: 'user_message', session_id: id, content: 'more' });
    const { done } = await client.waitForReply();
    expect(done.session_id).not.toBe(id);
    expect((await t.stored(id))!.msgs).toHaveLength(2);
  });

  it('share: same token on repeat, public read without identity, revoke → 404', async () => {
    const id = await converse('sharer', 'Share this?');
    expect((await post(`/sessions/${id}/share`, userToken('intruder'))).status).toBe(404);
    expect((await post(`/sessions/${id}/share`, adminToken('boss'))).status).toBe(404);
    const first = (await (await post(`/sessions/${id}/share`, userToken('sharer'))).json()) as any;
    const second = (await (await post(`/sessions/${id}/share`, userToken('sharer'))).json()) as any;
    expect(first.share_token).toBe(second.share_token);
    expect(first.share_url).toContain(`/chatbox/chat?share_token=${first.share_token}`);
    const shared = await get(`/shared/${first.share_token}`);
    expect(shared.status).toBe(200);
    const body = (await shared.json()) as any;
    expect(body).toMatchObject({ session_id: id, name: 'Share this?' });
    expect(body.messages).toHaveLength(2);
    expect(JSON.stringify(body)).not.toContain('sharer');
    const rows = (await (await get('/sessions', userToken('sharer'))).json()) as any;
    expect(rows.sessions[0].share_token).toBe(first.share_token);
    const revoked = await post(`/sessions/${id}/share`, userToken('sharer'), 'DELETE');
    expect(revoked.status).toBe(204);
    expect((await get(`/shared/${first.share_token}`)).status).toBe(404);
  });

  it('GET /models answers the configured models and the default', async () => {
    const response = await get('/models', userToken('m'));
    expect(await response.json()).toEqual({ models: [{ id: 'demo', name: 'Demo model' }], default: 'demo' });
  });

  it.each([
    ['no token', undefined],
    ['an expired token', expiredToken('x')],
    ['garbage', 'not.a.jwt'],
  ])('answers 401 with the error body for %s', async (_label, token) => {
    const response = await get('/sessions', token);
    expect(response.status).toBe(401);
    const body = (await response.json()) as any;
    expect(body).toMatchObject({
      code: expect.stringMatching(/UNAUTHORIZED|INVALID_TOKEN/),
      error: expect.any(String),
    });
    expect(body.error).toBe(body.message);
  });

  it('the public route is rate limited per IP with Retry-After', async () => {
    // A client address of its own (through the trusted loopback proxy): a budget no other test used.
    const headers = { 'X-Forwarded-For': '203.0.113.45' };
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let index = 0; index < 7; index++) {
      const response = await fetch(`${t.baseUrl}/shared/nonexistent-token`, { headers });
      statuses.push(response.status);
      if (response.status === 429) limited = response;
    }
    expect(statuses).toEqual([404, 404, 404, 404, 404, 429, 429]);
    // Another address keeps its own budget.
    const other = await fetch(`${t.baseUrl}/shared/nonexistent-token`, {
      headers: { 'X-Forwarded-For': '203.0.113.46' },
    });
    expect(other.status).toBe(404);
    expect(limited).toBeDefined();
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await limited!.json()) as any).retry_after_ms).toBeGreaterThan(0);
  });

  it('answers 400 (not 500) for malformed JSON bodies', async () => {
    const response = await fetch(`${t.baseUrl}/sessions/x/share`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${userToken('x')}`, 'Content-Type': 'application/json' },
      body: '{not json',
    });
    expect(response.status).toBe(400);
  });
});

describe('REST: concurrent ends of one session', () => {
  it('20 parallel ends: all answer ended, the session ends once, one session_ended event', async () => {
    const t = await startTestApp();
    const clients: TestClient[] = [];
    try {
      const dashboard = await TestClient.connect(t.wsUrl, { token: adminToken('ends-watcher') });
      clients.push(dashboard);
      const user = await TestClient.connect(t.wsUrl, { token: userToken('racer') });
      clients.push(user);
      await user.waitForType('connection_status');
      user.send({ type: 'user_message', content: 'end me twenty times' });
      const { done } = await user.waitForReply();
      const responses = await Promise.all(
        Array.from({ length: 20 }, () =>
          fetch(`${t.baseUrl}/sessions/${done.session_id}/end`, {
            method: 'POST',
            headers: { Authorization: `Bearer ${userToken('racer')}` },
          }),
        ),
      );
      expect(responses.map((response) => response.status)).toEqual(Array(20).fill(200));
      // Each end is announced before its answer: the pongs then come after every announcement.
      await dashboard.roundTrip();
      await user.roundTrip();
      const ended = dashboard.frames.filter(
        (frame) => frame.metadata?.event === 'session_ended' && frame.session_id === done.session_id,
      );
      expect(ended).toHaveLength(1);
      expect(user.frames.filter((frame) => frame.metadata?.reason === 'session_ended')).toHaveLength(1);
    } finally {
      await Promise.all(clients.map((client) => client.close()));
      await t.close();
    }
  });
});
