import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MongoClient } from 'mongodb';
import { FerretDbProcess } from '@chatbox/storage';
import { FakeOpenAi, startFakeOpenAi } from '../support/fake-llm';
import { startTestApp, TestApp } from '../support/app';
import { userToken } from '../support/tokens';
import { TestClient } from '../support/ws-client';

/** SPEC 13: MongoDB down while a reply streams — the reply still streams and is stored on recovery. */
describe('message outbox while MongoDB is down', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'chatbox-outbox-'));
  const database = new FerretDbProcess({ binary: resolve(__dirname, '../../.tools/bin/ferretdb'), dataDir });
  let fake: FakeOpenAi;
  let t: TestApp;

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    fake.script({
      chunks: Array.from({ length: 20 }, (_, i) => `p${i} `),
      delayMs: 100,
      usage: { prompt_tokens: 4, completion_tokens: 20 },
    });
    t = await startTestApp(
      {
        MONGO_URI: await database.start(),
        MONGO_RETRY_ATTEMPTS: '0',
        LLM_PROVIDER_1_ID: 'gpt',
        LLM_PROVIDER_1_TYPE: 'openai',
        LLM_PROVIDER_1_ENDPOINT: fake.url,
        LLM_PROVIDER_1_MODEL: 'fake-model',
      },
      { outboxFlushIntervalMs: 200 },
    );
  });
  afterAll(async () => {
    await t?.close().catch(() => undefined);
    await database.stop();
    await fake?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps streaming, queues the finished reply, and writes it once MongoDB is back', async () => {
    const client = await TestClient.connect(t.wsUrl, { token: userToken('outage') });
    await client.waitForType('connection_status');
    client.send({ type: 'user_message', content: 'during an outage' });
    const started = await client.waitFor(
      (frame) => frame.type === 'ai_response' && frame.metadata?.seq === '2',
    );
    database.killForTest('SIGKILL');
    const { done, text } = await client.waitForReply(started.metadata!.message_id, 30_000);
    expect(text).toBe(Array.from({ length: 20 }, (_, i) => `p${i} `).join(''));
    expect(done.metadata!.error).toBeUndefined();
    expect(client.ofType('error')).toEqual([]);

    await database.start();
    const reader = await MongoClient.connect(database.uri);
    try {
      const deadline = Date.now() + 30_000;
      let stored: any;
      while (Date.now() < deadline) {
        const session = await reader
          .db(t.config.mongo.database)
          .collection('sessions')
          .findOne({ _id: done.session_id as never })
          .catch(() => null);
        stored = session?.msgs.find((message: { id: string }) => message.id === done.metadata!.message_id);
        if (stored) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(stored).toMatchObject({ content: text, sender: 'ai', meta: { status: 'complete' } });
      const session = await reader
        .db(t.config.mongo.database)
        .collection('sessions')
        .findOne({ _id: done.session_id as never });
      expect(
        session!.msgs.filter((message: { id: string }) => message.id === done.metadata!.message_id),
      ).toHaveLength(1);
      expect(session!.completionTokens).toBe(20);
    } finally {
      await reader.close();
    }
  });
});
