import { startTestApp, TestApp } from '../support/app';
import { userToken } from '../support/tokens';
import { TestClient } from '../support/ws-client';

describe('chat: a streamed reply end to end (demo model)', () => {
  let t: TestApp;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    t = await startTestApp({ ENCRYPTION_KEY: 'z'.repeat(32) });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => t?.close());

  async function connect(userId: string, sessionId?: string): Promise<TestClient> {
    const client = await TestClient.connect(t.wsUrl, { token: userToken(userId), sessionId });
    clients.push(client);
    return client;
  }

  it('sends the exact frame sequence and stores what was streamed', async () => {
    const client = await connect('u-seq');
    const status = await client.waitForType('connection_status');
    expect(status).toMatchObject({
      type: 'connection_status',
      sender: 'system',
      user_id: 'u-seq',
      models: [{ id: 'demo', name: 'Demo model' }],
    });
    expect(status.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // Unbound: the id the first message's session will take, nothing stored yet.
    expect(status.session_id).toMatch(/^[0-9a-f]{32}$/);

    client.send({ type: 'user_message', content: 'Hello there. How are you?' });
    const { frames, done, text } = await client.waitForReply();
    const types = client.frames.map((frame) => frame.type);
    expect(types[0]).toBe('connection_status');
    expect(types[1]).toBe('loading');
    expect(types.slice(2).every((type) => type === 'ai_response')).toBe(true);

    const sessionId = done.session_id!;
    expect(sessionId).toBe(status.session_id);
    const messageId = done.metadata!.message_id;
    frames.forEach((frame, index) => {
      expect(frame).toMatchObject({
        sender: 'ai',
        session_id: sessionId,
        id: messageId,
        model_id: 'demo',
        metadata: { streaming: 'true', message_id: messageId, seq: String(index) },
      });
    });
    expect(frames.filter((frame) => frame.metadata!.done === 'true')).toHaveLength(1);
    expect(frames.at(-1)).toBe(done);
    expect(frames.length).toBeGreaterThan(3);
    expect(Number(done.metadata!.tokens)).toBe(
      Number(done.metadata!.prompt_tokens) + Number(done.metadata!.completion_tokens),
    );
    expect(Number(done.metadata!.response_time_ms)).toBeGreaterThan(0);
    expect(Number(done.metadata!.first_token_ms)).toBeGreaterThanOrEqual(0);

    const history = await fetch(`${t.baseUrl}/sessions/${sessionId}`, {
      headers: { Authorization: `Bearer ${userToken('u-seq')}` },
    });
    expect(history.status).toBe(200);
    const body = (await history.json()) as any;
    expect(body).toMatchObject({
      session_id: sessionId,
      name: 'Hello there.',
      model_id: '',
      is_active: true,
    });
    expect(body.messages).toHaveLength(2);
    expect(body.messages[0]).toMatchObject({
      type: 'user_message',
      sender: 'user',
      content: 'Hello there. How are you?',
    });
    expect(body.messages[1]).toMatchObject({
      id: messageId,
      type: 'ai_response',
      sender: 'ai',
      content: text,
    });

    const raw = await t.stored(sessionId);
    expect(raw!.msgs[1].content).not.toContain('demo model');
    expect(raw!.totalTokens).toBe(Number(done.metadata!.tokens));
    expect(raw!.maxRespTime).toBe(Number(done.metadata!.response_time_ms));
  });
});
