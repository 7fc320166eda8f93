/**
 * The long fuzz run of issue 13 (the quick one is in chat-hostile.test.ts): 20,000 random and
 * mutated frames on one socket. Every frame is answered (directly, or by its streamed reply), no
 * answer is INTERNAL_ERROR, the socket stays open and the service healthy.
 */
import { startTestApp, TestApp } from '../support/app';
import { expectFuzzSurvived, fuzzFrames, fuzzSocket } from '../support/frame-fuzz';
import { userToken } from '../support/tokens';
import { TestClient } from '../support/ws-client';

const FRAMES = 20_000;

describe('chat: 20,000 fuzzed frames', () => {
  let t: TestApp;
  let client: TestClient | undefined;

  beforeAll(async () => {
    t = await startTestApp({ MAX_MESSAGE_SIZE: '65536' });
  });
  afterAll(async () => {
    await client?.close();
    await t?.close();
  });

  it('never answers INTERNAL_ERROR, answers every frame, keeps the socket and the service up', async () => {
    client = await TestClient.connect(t.wsUrl, { token: userToken('fuzz-long') });
    await client.waitForType('connection_status');
    const report = await fuzzSocket(client, fuzzFrames(FRAMES, 13_2026));
    expect(report.sent).toBe(FRAMES);
    await expectFuzzSurvived(client, report);
    expect((await fetch(`${t.baseUrl}/healthz`)).status).toBe(200);
  }, 120_000);
});
