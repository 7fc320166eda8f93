/**
 * Behaviours that follow from configuration and that no other test pinned down (issue 13: each was
 * broken on purpose and nothing failed): SHARE_LINK_TTL, LLM_HISTORY_MESSAGES, AI_DURING_TAKEOVER,
 * the session name encrypted at rest, identities removed from shared views, the message rate limit
 * on file and voice messages.
 */
import { FakeOpenAi, startFakeOpenAi, openAiProviderEnv } from '../support/fake-llm';
import { startTestApp, TestApp } from '../support/app';
import { decryptDocumented } from '../support/encryption';
import { PNG, uploadFile, wavFile } from '../support/files-suite';
import { adminToken, userToken } from '../support/tokens';
import { Frame, TestClient } from '../support/ws-client';

const ENCRYPTION_KEY = 'c'.repeat(16) + 'k'.repeat(16);
const SHARE_LINK_TTL_MS = 1_500;
const HISTORY_MESSAGES = 2;
const RATE_LIMIT = 4;

describe('configured behaviours', () => {
  let t: TestApp;
  let fake: FakeOpenAi;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    t = await startTestApp({
      ENCRYPTION_KEY,
      SHARE_LINK_TTL: `${SHARE_LINK_TTL_MS}ms`,
      LLM_HISTORY_MESSAGES: String(HISTORY_MESSAGES),
      AI_DURING_TAKEOVER: 'true',
      RATE_LIMIT: String(RATE_LIMIT),
      ...openAiProviderEnv(fake, { id: 'gpt', model: 'gpt-test', endpoint: `${fake.url}/v1` }),
      STT_PROVIDER_ID: 'gpt',
    });
  });
  beforeEach(() => fake.reset().script({ chunks: ['Fine', ' answer.'] }));
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
  });

  async function connect(token: string, sessionId?: string): Promise<TestClient> {
    const client = await TestClient.connect(t.wsUrl, { token, sessionId });
    clients.push(client);
    await client.waitForType('connection_status');
    return client;
  }

  const api = (path: string, token?: string, method = 'GET') =>
    fetch(`${t.baseUrl}${path}`, { method, headers: token ? { Authorization: `Bearer ${token}` } : {} });

  /** Sends a message and waits for the done frame of the reply it causes. */
  async function ask(client: TestClient, content: string, sessionId?: string): Promise<Frame> {
    const from = client.frames.length;
    client.send({ type: 'user_message', content, ...(sessionId ? { session_id: sessionId } : {}) });
    return client.waitFor(
      (frame) => frame.type === 'ai_response' && frame.metadata?.done === 'true',
      15_000,
      from,
    );
  }

  /** Waits until the frames caused so far are answered (frames of one socket are handled in order). */
  async function settled(client: TestClient): Promise<Frame[]> {
    const from = client.frames.length;
    client.send({ type: 'ping' });
    await client.waitFor((frame) => frame.type === 'pong', 10_000, from);
    return client.frames;
  }

  it('SHARE_LINK_TTL: a share link answers until it expires, then 404', async () => {
    const owner = userToken('ttl-owner');
    const client = await connect(owner);
    const done = await ask(client, 'Share me for a moment.');
    const started = Date.now();
    const share = (await (await api(`/sessions/${done.session_id}/share`, owner, 'POST')).json()) as any;
    expect((await api(`/shared/${share.share_token}`)).status).toBe(200);
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, started + SHARE_LINK_TTL_MS + 200 - Date.now())),
    );
    expect((await api(`/shared/${share.share_token}`)).status).toBe(404);
    // A new share after expiry is a new link.
    const again = (await (await api(`/sessions/${done.session_id}/share`, owner, 'POST')).json()) as any;
    expect(again.share_token).not.toBe(share.share_token);
    expect((await api(`/shared/${again.share_token}`)).status).toBe(200);
  });

  it('LLM_HISTORY_MESSAGES: the model gets the system prompt, the last N messages and the new one', async () => {
    const client = await connect(userToken('history'));
    const first = await ask(client, 'first question');
    const sessionId = first.session_id!;
    await ask(client, 'second question', sessionId);
    fake.reset().script({ chunks: ['third', ' answer'] });
    await ask(client, 'third question', sessionId);
    const [request] = fake.requestsTo('/chat/completions');
    const messages = request.body.messages as { role: string; content: string }[];
    expect(messages[0].role).toBe('system');
    expect(messages.slice(1)).toEqual([
      { role: 'user', content: 'second question' },
      { role: 'assistant', content: 'Fine answer.' },
      { role: 'user', content: 'third question' },
    ]);
    expect(messages.slice(1)).toHaveLength(HISTORY_MESSAGES + 1);
  });

  it('AI_DURING_TAKEOVER=true: the AI keeps answering the user while an admin assists; not the admin', async () => {
    const client = await connect(userToken('assisted'));
    const first = await ask(client, 'I would like a human.');
    const sessionId = first.session_id!;
    const token = adminToken('helper', 'Helper');
    expect((await api(`/admin/takeover/${sessionId}`, token, 'POST')).status).toBe(200);
    await client.waitForType('admin_join');
    const admin = await connect(token, sessionId);
    const during = await ask(client, 'Still there, bot?', sessionId);
    expect(during.metadata!.message_id).not.toBe(first.metadata!.message_id);
    const requestsBefore = fake.requestsTo('/chat/completions').length;
    admin.send({ type: 'user_message', content: 'Human here.' });
    await client.waitFor((frame) => frame.type === 'user_message' && frame.sender === 'admin');
    await settled(admin);
    await settled(client);
    expect(fake.requestsTo('/chat/completions')).toHaveLength(requestsBefore);
  });

  it('stores the session name encrypted at rest (nmEnc) and answers it in plaintext', async () => {
    const token = userToken('named');
    const client = await connect(token);
    const done = await ask(client, 'Where is my parcel? It was due on Monday.');
    const raw = await t.stored(done.session_id);
    expect(raw!.nmEnc).toBe(true);
    expect(raw!.nm).not.toContain('parcel');
    expect(decryptDocumented(raw!.nm, ENCRYPTION_KEY)).toBe('Where is my parcel?');
    const detail = (await (await api(`/sessions/${done.session_id}`, token)).json()) as any;
    expect(detail.name).toBe('Where is my parcel?');
  });

  it('stores file names encrypted at rest, in the upload record and in the message, and serves them in plaintext', async () => {
    const token = userToken('file-namer');
    const { body } = await uploadFile(t, token, { bytes: PNG, name: 'secret-invoice.png' });
    const client = await connect(token);
    const first = await ask(client, 'Here comes a file.');
    client.send({ type: 'file_upload', session_id: first.session_id, file_id: body.file_id });
    await settled(client);
    const upload = await t.db.collection('uploads').findOne({ _id: body.file_id as never });
    expect(upload!.filename).not.toContain('invoice');
    expect(decryptDocumented(upload!.filename, ENCRYPTION_KEY)).toBe('secret-invoice.png');
    const stored = await t.stored(first.session_id);
    const message = stored!.msgs.find((m) => m.fileId === body.file_id);
    expect(message.meta.file_name).not.toContain('invoice');
    const history = (await (await api(`/sessions/${first.session_id}`, token)).json()) as any;
    const view = history.messages.find((m: any) => m.file_id === body.file_id);
    expect(view.metadata.file_name).toBe('secret-invoice.png');
    const file = await fetch(
      view.file_url.startsWith('http')
        ? view.file_url
        : `${t.baseUrl.replace(/\/chatbox$/, '')}${view.file_url}`,
    );
    expect(file.headers.get('content-disposition')).toContain('secret-invoice.png');
  });

  it('a shared view carries neither the user’s nor the assisting admin’s identity', async () => {
    const owner = userToken('private-person-42');
    const client = await connect(owner);
    const done = await ask(client, 'Please help.');
    const sessionId = done.session_id!;
    const token = adminToken('agent-secret-7', 'Agent Secretname');
    expect((await api(`/admin/takeover/${sessionId}`, token, 'POST')).status).toBe(200);
    const admin = await connect(token, sessionId);
    admin.send({
      type: 'user_message',
      content: 'An agent answers.',
      metadata: { admin_id: 'agent-secret-7', admin_name: 'Agent Secretname', user_id: 'private-person-42' },
    });
    await client.waitFor((frame) => frame.type === 'user_message' && frame.sender === 'admin');
    expect((await api(`/admin/takeover/${sessionId}`, token, 'DELETE')).status).toBe(204);
    const share = (await (await api(`/sessions/${sessionId}/share`, owner, 'POST')).json()) as any;
    const shared = await api(`/shared/${share.share_token}`);
    expect(shared.status).toBe(200);
    const text = await shared.text();
    expect(JSON.parse(text).messages.map((message: any) => message.sender)).toContain('admin');
    for (const identity of ['private-person-42', 'agent-secret-7', 'Agent Secretname', 'Secretname'])
      expect(text).not.toContain(identity);
  });

  it('RATE_LIMIT counts file and voice messages too: beyond it they get TOO_MANY_REQUESTS', async () => {
    const token = userToken('sender-of-files');
    const file = (await uploadFile(t, token, { bytes: PNG, name: 'a.png' })).body;
    const voice = (await uploadFile(t, token, { bytes: wavFile(1_000), name: 'v.wav', type: 'audio/wav' }))
      .body;
    const client = await connect(token);
    for (let index = 0; index < RATE_LIMIT; index++)
      client.send({ type: 'file_upload', file_id: file.file_id });
    const from = client.frames.length;
    client.send({ type: 'file_upload', file_id: file.file_id });
    client.send({ type: 'voice_message', file_id: voice.file_id });
    client.send({ type: 'user_message', content: 'and text' });
    await settled(client);
    const refused = client.frames.slice(from).filter((frame) => frame.type === 'error');
    expect(refused.map((frame) => frame.error!.code)).toEqual([
      'TOO_MANY_REQUESTS',
      'TOO_MANY_REQUESTS',
      'TOO_MANY_REQUESTS',
    ]);
    expect(refused[0].error!.retry_after).toBeGreaterThan(0);
    expect(fake.transcriptions).toHaveLength(0);
  });
});
