import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MongoClient } from 'mongodb';
import { freePort, isProcessAlive } from '@chatbox/storage';
import { builtEntry } from '../support/built-service';
import { databaseTempDir, embeddedDatabase } from '../support/embedded-database';
import { FakeOpenAi, startFakeOpenAi, openAiProviderEnv } from '../support/fake-llm';
import { userToken, TEST_JWT_SECRET } from '../support/tokens';
import { TestClient } from '../support/ws-client';
import { storedView } from '../support/app';

const root = resolve(__dirname, '../..');
let entry = '';

/** SPEC 13 on the built service: SIGTERM while a reply streams. */
describe('graceful shutdown', () => {
  const dataDir = databaseTempDir('chatbox-shutdown-');
  let child: ChildProcess;
  let fake: FakeOpenAi;
  let port: number;
  let output = '';

  beforeAll(async () => {
    entry = builtEntry();
    fake = await startFakeOpenAi();
    // Longer than the 10 s grace: the reply must be cut and stored as interrupted.
    fake.script({ chunks: Array.from({ length: 100 }, (_, i) => `t${i} `), delayMs: 150 });
    port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: 'development',
      PORT: String(port),
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      JWT_SECRET: TEST_JWT_SECRET,
      ...openAiProviderEnv(fake, { id: 'gpt' }),
    };
    delete env.MONGO_URI;
    child = spawn(process.execPath, [entry], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 45_000;
    while (!/admin-page\?token=/.test(output)) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`service did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  afterAll(async () => {
    if (child?.exitCode === null) child.kill('SIGKILL');
    await fake?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('notifies and closes sockets with 1001, flips readiness, stores the reply (which used its whole grace) as interrupted with its counters, exits 0, leaves no FerretDB', async () => {
    const client = await TestClient.connect(`ws://127.0.0.1:${port}/chatbox/ws`, {
      token: userToken('leaving'),
    });
    await client.waitForType('connection_status');
    client.send({ type: 'user_message', content: 'Tell me a long story' });
    const first = await client.waitFor(
      (frame) => frame.type === 'ai_response' && frame.metadata?.seq === '3',
    );
    const ferretPid = Number(readFileSync(join(dataDir, 'db/ferretdb.pid'), 'utf8'));
    const exited = new Promise<{ code: number | null; at: number }>((r) =>
      child.once('exit', (code) => r({ code, at: Date.now() })),
    );
    const signalledAt = Date.now();
    child.kill('SIGTERM');

    const notice = await client.waitFor((frame) => frame.type === 'notification', 5_000);
    expect(notice.metadata).toMatchObject({ reason: 'server_shutdown' });
    expect(await client.closed).toBe(1001);
    const ready = await fetch(`http://127.0.0.1:${port}/chatbox/readyz`).catch(() => undefined);
    if (ready) expect(ready.status).toBe(503);

    const { code, at } = await exited;
    expect(code).toBe(0);
    expect(at - signalledAt).toBeLessThan(30_000);
    expect(isProcessAlive(ferretPid)).toBe(false);
    // The reply used its whole grace; its write still had the rest of the deadline: nothing was
    // left in the outbox journal for the next start.
    expect(statSync(join(dataDir, 'outbox/journal.ndjson')).size).toBe(0);

    // Read what was stored, with a fresh FerretDB on the same data directory.
    const database = embeddedDatabase(join(dataDir, 'db'));
    const client2 = await MongoClient.connect(await database.start());
    try {
      const session = await storedView(client2.db('chat'), first.session_id!);
      const reply = session!.msgs.find(
        (message: { id: string }) => message.id === first.metadata!.message_id,
      );
      expect(reply.meta.status).toBe('interrupted');
      expect(reply.content.startsWith('t0 t1 t2 t3 ')).toBe(true);
      // Its counters were written too (the user message's and the reply's).
      const completionTokens = Number(reply.meta.completion_tokens);
      expect(completionTokens).toBeGreaterThan(0);
      expect(session).toMatchObject({
        msgCount: 2,
        completionTokens,
        totalTokens: Number(reply.meta.prompt_tokens) + completionTokens,
        respCount: 1,
      });
      expect(await client2.db('chat').collection('reply_checkpoints').countDocuments({})).toBe(0);
    } finally {
      await client2.close();
      await database.stop();
    }
  });
});
