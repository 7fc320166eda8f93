/**
 * The long fuzz run of issue 13 (the quick one is in chat-hostile.test.ts): 20,000 random and
 * mutated frames of full-Unicode text (U+0000, control characters, unpaired surrogates) on one socket,
 * with a rate limit high enough that user messages keep reaching the session layer and real uploads
 * behind some file ids. What is checked is listed on `expectFuzzSurvived` (test/support/frame-fuzz.ts):
 * no INTERNAL_ERROR, every refused frame answered with the parser's error, every other frame answered
 * or of a type answered otherwise, every stored user message answered by a reply; the socket stays
 * open and the service healthy.
 */
import { startTestApp, TestApp } from '../support/app';
import {
  expectFuzzSurvived,
  FUZZ_MAX_MESSAGE_SIZE,
  fuzzFrames,
  fuzzSocket,
  uploadFuzzFiles,
} from '../support/frame-fuzz';
import { userToken } from '../support/tokens';
import { TestClient } from '../support/ws-client';

const FRAMES = 20_000;
/** Far above what the run sends in its minute or two: TOO_MANY_REQUESTS would answer every message. */
const FUZZ_RATE_LIMIT = '1000000';

describe('chat: 20,000 fuzzed frames', () => {
  let t: TestApp;
  let client: TestClient | undefined;

  beforeAll(async () => {
    t = await startTestApp({
      MAX_MESSAGE_SIZE: String(FUZZ_MAX_MESSAGE_SIZE),
      RATE_LIMIT: FUZZ_RATE_LIMIT,
    });
  });
  afterAll(async () => {
    await client?.close();
    await t?.close();
  });

  it('never answers INTERNAL_ERROR, answers every frame and every stored message, stays up', async () => {
    const files = await uploadFuzzFiles(t, 'fuzz-long');
    client = await TestClient.connect(t.wsUrl, { token: userToken('fuzz-long') });
    await client.waitForType('connection_status');
    const runStart = client.frames.length;
    const report = await fuzzSocket(client, 'fuzz-long', fuzzFrames(FRAMES, 13_2026, files));
    expect(report.sent).toHaveLength(FRAMES);
    await expectFuzzSurvived(t, client, report, runStart);
    expect((await fetch(`${t.baseUrl}/healthz`)).status).toBe(200);
  }, 240_000);
});
