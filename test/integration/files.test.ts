import { startFakeOpenAi, FakeOpenAi, openAiProviderEnv } from '../support/fake-llm';
import { startTestApp, TestApp } from '../support/app';
import { absolute, filesSuite, localObjects, uploadFile, wavFile } from '../support/files-suite';
import { userToken } from '../support/tokens';
import { TestClient } from '../support/ws-client';

filesSuite('local', { env: () => ({ STORAGE_DRIVER: 'local' }), storedObjects: localObjects });

describe('voice notes with speech-to-text (fake OpenAI server)', () => {
  let fake: FakeOpenAi;
  let t: TestApp;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    t = await startTestApp({
      ...openAiProviderEnv(fake, {
        id: 'gpt',
        model: 'gpt-test',
        apiKey: 'sk-test',
        endpoint: `${fake.url}/v1`,
      }),
      ...openAiProviderEnv(fake, {
        n: 2,
        id: 'whisper',
        model: 'whisper-1',
        apiKey: 'sk-test',
        endpoint: `${fake.url}/v1`,
      }),
      STT_PROVIDER_ID: 'whisper',
    });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
  });

  it('transcribes, tells every socket, stores meta.transcription and streams a reply to it', async () => {
    fake.transcript = 'What is the weather like?';
    fake.script({ chunks: ['It is ', 'sunny.'] });
    const audio = wavFile(4_000);
    const { body } = await uploadFile(t, userToken('u-voice'), {
      bytes: audio,
      name: 'voice.wav',
      type: 'audio/wav',
    });

    const tab1 = await TestClient.connect(t.wsUrl, { token: userToken('u-voice') });
    clients.push(tab1);
    await tab1.waitForType('connection_status');
    tab1.send({ type: 'user_message', content: 'Hi.' });
    const first = await tab1.waitForReply();
    const sessionId = first.done.session_id!;
    const tab2 = await TestClient.connect(t.wsUrl, { token: userToken('u-voice'), sessionId });
    clients.push(tab2);
    await tab2.waitForType('connection_status');

    const from = tab1.frames.length;
    tab1.send({ type: 'voice_message', session_id: sessionId, file_id: body.file_id });
    const transcribed = await tab1.waitFor(
      (frame) => frame.type === 'voice_message' && frame.content === 'What is the weather like?',
      10_000,
      from,
    );
    expect(transcribed).toMatchObject({ sender: 'user', file_id: body.file_id, session_id: sessionId });
    const other = await tab2.waitFor(
      (frame) => frame.type === 'voice_message' && frame.content === transcribed.content,
    );
    expect((await fetch(absolute(t, other.file_url as string))).status).toBe(200);

    const reply = await tab1.waitFor(
      (frame) =>
        frame.type === 'ai_response' &&
        frame.metadata?.done === 'true' &&
        frame.metadata.message_id !== first.done.metadata!.message_id,
      15_000,
    );
    const text = tab1.frames
      .filter(
        (frame) => frame.type === 'ai_response' && frame.metadata?.message_id === reply.metadata!.message_id,
      )
      .map((frame) => frame.content ?? '')
      .join('');
    expect(text).toBe('It is sunny.');

    expect(fake.transcriptions[0]).toMatchObject({
      model: 'whisper-1',
      file: { name: 'voice.wav', type: 'audio/wav' },
    });
    expect(fake.transcriptions[0].file!.bytes.equals(audio)).toBe(true);
    const lastChat = fake.requestsTo('/chat/completions').at(-1)!;
    expect(JSON.stringify(lastChat.body.messages.at(-1))).toContain('What is the weather like?');

    const stored = await t.stored(sessionId);
    const voice = (stored!.msgs as any[]).find((entry) => entry.type === 'voice_message');
    expect(voice.meta).toMatchObject({ transcription: 'What is the weather like?' });
    expect(voice.fileUrl).toBe(`/chatbox/files/${body.file_id}`);
  });
});
