import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeOpenAi, startFakeOpenAi, openAiProviderEnv } from '../support/fake-llm';
import { storedView } from '../support/app';
import { TestDatabase } from '../support/database';
import { ChatboxProcess } from '../support/chatbox-process';
import { userToken } from '../support/tokens';
import { TestClient } from '../support/ws-client';

/**
 * Issue 11 on the built service: a process killed outright (kill -9) or stopped (SIGTERM) while
 * replies stream or wait for the database loses nothing it acknowledged.
 */
describe('the service process killed or stopped mid-work', () => {
  const database = new TestDatabase();
  const dataDirs: string[] = [];
  const clients: TestClient[] = [];
  const services: ChatboxProcess[] = [];
  let fake: FakeOpenAi;

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    await database.start();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close().catch(() => undefined)));
    // A test that failed half-way leaves no process behind (it would keep Jest waiting).
    await Promise.all(services.splice(0).map((app) => app.stop('SIGKILL')));
  });
  afterAll(async () => {
    await database.close();
    await fake?.close();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  });

  function service(databaseName: string): ChatboxProcess {
    const dataDir = mkdtempSync(join(tmpdir(), 'chatbox-durable-'));
    dataDirs.push(dataDir);
    const app = new ChatboxProcess({
      MONGO_URI: database.uri,
      MONGO_DATABASE: databaseName,
      MONGO_RETRY_ATTEMPTS: '1',
      DATA_DIR: dataDir,
      ...openAiProviderEnv(fake, { id: 'gpt' }),
    });
    services.push(app);
    return app;
  }

  async function connect(url: string, userId: string, sessionId?: string): Promise<TestClient> {
    const client = await TestClient.connect(url, { token: userToken(userId), sessionId });
    clients.push(client);
    await client.waitForType('connection_status');
    return client;
  }

  it('kill -9 mid-stream: after a restart the partial reply is stored as interrupted and stream_resume ends it', async () => {
    fake.script({ chunks: Array.from({ length: 60 }, (_, i) => `s${i} `), delayMs: 100 });
    const app = service('killed_mid_stream');
    await app.start();
    const client = await connect(app.wsUrl, 'killed');
    client.send({ type: 'user_message', content: 'a long answer please' });
    // Past the checkpoint interval (2 s): the text so far has been saved at least once.
    const late = await client.waitFor((f) => f.type === 'ai_response' && f.metadata?.seq === '30', 15_000);
    await app.stop('SIGKILL');
    const received = client.frames
      .filter((f) => f.type === 'ai_response' && f.metadata?.done === 'false')
      .map((f) => f.content)
      .join('');

    await app.start();
    const sessionId = late.session_id!;
    const messageId = late.metadata!.message_id;
    const back = await connect(app.wsUrl, 'killed', sessionId);
    back.send({
      type: 'stream_resume',
      session_id: sessionId,
      metadata: { message_id: messageId, last_seq: '30' },
    });
    const done = await back.waitFor((f) => f.type === 'ai_response' && f.metadata?.done === 'true', 10_000);
    expect(done.metadata).toMatchObject({ status: 'interrupted', message_id: messageId, streaming: 'false' });
    expect(done.content!.length).toBeGreaterThan(0);
    expect(received.startsWith(done.content!)).toBe(true);

    const db = await database.db('killed_mid_stream');
    const stored = await storedView(db, sessionId);
    expect(stored!.msgs.map((m) => [m.sender, m.meta?.status])).toEqual([
      ['user', undefined],
      ['ai', 'interrupted'],
    ]);
    expect(stored!.msgCount).toBe(2);
    expect(await db.collection('reply_checkpoints').countDocuments({})).toBe(0);
    await app.stop();
  });

  it('kill -9 within the first second of a reply, before any checkpoint: after a restart it is stored as interrupted and stream_resume ends it', async () => {
    fake.script({ chunks: Array.from({ length: 60 }, (_, i) => `e${i} `), delayMs: 100 });
    const app = service('killed_early');
    await app.start();
    const client = await connect(app.wsUrl, 'killed-early');
    client.send({ type: 'user_message', content: 'a slow answer please' });
    const loading = await client.waitFor((f) => f.type === 'loading', 10_000);
    // Its first chunk: well inside the checkpoint interval (2 s), so only the journal knows of it.
    await client.waitFor((f) => f.type === 'ai_response' && f.metadata?.seq === '1', 10_000);
    await app.stop('SIGKILL');
    const db = await database.db('killed_early');
    expect(await db.collection('reply_checkpoints').countDocuments({})).toBe(0);

    await app.start();
    const sessionId = loading.session_id!;
    const messageId = loading.metadata!.message_id;
    const back = await connect(app.wsUrl, 'killed-early', sessionId);
    back.send({
      type: 'stream_resume',
      session_id: sessionId,
      metadata: { message_id: messageId, last_seq: '1' },
    });
    const done = await back.waitFor((f) => f.type === 'ai_response' && f.metadata?.done === 'true', 10_000);
    expect(back.ofType('error')).toEqual([]);
    expect(done.metadata).toMatchObject({ status: 'interrupted', message_id: messageId, streaming: 'false' });

    const deadline = Date.now() + 30_000;
    let stored = await storedView(db, sessionId);
    while (stored?.msgCount !== 2) {
      if (Date.now() > deadline) throw new Error(`not stored: ${JSON.stringify(stored)}`);
      await new Promise((r) => setTimeout(r, 200));
      stored = await storedView(db, sessionId);
    }
    expect(stored.msgs.map((m) => [m.sender, m.meta?.status])).toEqual([
      ['user', undefined],
      ['ai', 'interrupted'],
    ]);
    expect(stored.msgs[1].id).toBe(messageId);
    await app.stop();
  });

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`${signal} with 5 replies waiting for the database: all of them are stored after a restart, in order`, async () => {
      fake.script({ chunks: ['quick ', 'answer'], usage: { prompt_tokens: 2, completion_tokens: 2 } });
      const name = `outbox_${signal.toLowerCase()}`;
      const app = service(name);
      await app.start();
      const client = await connect(app.wsUrl, `outbox-${signal}`);
      client.send({ type: 'user_message', content: 'stored normally' });
      const first = await client.waitForReply();
      const sessionId = first.done.session_id!;

      await database.kill();
      for (let i = 0; i < 5; i++) {
        const from = client.frames.length;
        client.send({ type: 'user_message', content: `queued ${i}` });
        const done = await client.waitFor(
          (f) => f.type === 'ai_response' && f.metadata?.done === 'true',
          15_000,
          from,
        );
        expect(done.metadata!.error).toBeUndefined();
      }
      expect(client.ofType('error')).toEqual([]);
      const code = await app.stop(signal);
      if (signal === 'SIGTERM') expect(code).toBe(0);

      await database.start();
      await app.start();
      const db = await database.db(name);
      const deadline = Date.now() + 30_000;
      let stored = await storedView(db, sessionId);
      while ((stored?.msgs.length ?? 0) < 12 || stored?.msgCount !== 12) {
        if (Date.now() > deadline)
          throw new Error(`not all stored: ${JSON.stringify(stored?.msgs.map((m) => m.content))}`);
        await new Promise((r) => setTimeout(r, 200));
        stored = await storedView(db, sessionId);
      }
      expect(stored!.msgs.filter((m) => m.sender === 'user').map((m) => m.content)).toEqual([
        'stored normally',
        ...Array.from({ length: 5 }, (_, i) => `queued ${i}`),
      ]);
      expect(stored!.msgs.map((m) => m.sender)).toEqual(
        Array.from({ length: 6 }, () => ['user', 'ai']).flat(),
      );
      expect(stored).toMatchObject({ msgCount: 12, totalTokens: 24 });
      await app.stop();
    });
  }
});
