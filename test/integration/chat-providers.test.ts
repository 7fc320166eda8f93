import {
  FakeAnthropic,
  FakeDify,
  FakeLlmServer,
  FakeOpenAi,
  startFakeAnthropic,
  startFakeDify,
  startFakeOpenAi,
} from '../support/fake-llm';
import { startTestApp, TestApp } from '../support/app';
import { absolute, PNG, uploadFile, wavFile } from '../support/files-suite';
import { userToken } from '../support/tokens';
import { until } from '../support/until';
import { Frame, TestClient } from '../support/ws-client';

const SYSTEM_PROMPT = 'You are the provider test assistant.';
const API_KEY = 'sk-provider-test-key';

type ProviderName = 'gpt' | 'claude' | 'dify';

interface Fakes {
  gpt: FakeOpenAi;
  claude: FakeAnthropic;
  dify: FakeDify;
}

function providersEnv(fakes: Fakes): Record<string, string> {
  return {
    LLM_SYSTEM_PROMPT: SYSTEM_PROMPT,
    LLM_PROVIDER_1_ID: 'gpt',
    LLM_PROVIDER_1_NAME: 'GPT fake',
    LLM_PROVIDER_1_TYPE: 'openai',
    LLM_PROVIDER_1_ENDPOINT: `${fakes.gpt.url}/v1`,
    LLM_PROVIDER_1_API_KEY: API_KEY,
    LLM_PROVIDER_1_MODEL: 'gpt-test',
    LLM_PROVIDER_2_ID: 'claude',
    LLM_PROVIDER_2_NAME: 'Claude fake',
    LLM_PROVIDER_2_TYPE: 'anthropic',
    LLM_PROVIDER_2_ENDPOINT: `${fakes.claude.url}/v1`,
    LLM_PROVIDER_2_API_KEY: API_KEY,
    LLM_PROVIDER_2_MODEL: 'claude-test',
    LLM_PROVIDER_3_ID: 'dify',
    LLM_PROVIDER_3_NAME: 'Dify fake',
    LLM_PROVIDER_3_TYPE: 'dify',
    LLM_PROVIDER_3_ENDPOINT: `${fakes.dify.url}/v1`,
    LLM_PROVIDER_3_API_KEY: API_KEY,
  };
}

async function startFakes(): Promise<Fakes> {
  const [gpt, claude, dify] = await Promise.all([startFakeOpenAi(), startFakeAnthropic(), startFakeDify()]);
  return { gpt, claude, dify };
}

function harness(getApp: () => TestApp) {
  const clients: TestClient[] = [];
  return {
    clients,
    async connect(userId: string, sessionId?: string): Promise<TestClient> {
      const client = await TestClient.connect(getApp().wsUrl, { token: userToken(userId), sessionId });
      clients.push(client);
      await client.waitForType('connection_status');
      return client;
    },
    async doc(sessionId: string): Promise<any> {
      return getApp().stored(sessionId);
    },
    /** A session bound to the client, with the given model selected. */
    async selectModel(client: TestClient, modelId: string): Promise<Frame> {
      const from = client.frames.length;
      client.send({ type: 'model_select', model_id: modelId });
      return client.waitFor(
        (frame) => frame.type === 'connection_status' && frame.content === `Model changed to ${modelId}`,
        10_000,
        from,
      );
    },
  };
}

/** Waits for the done frame of the first reply that starts after frame index `from`. */
async function replyAfter(client: TestClient, from: number) {
  const done = await client.waitFor(
    (frame) => frame.type === 'ai_response' && frame.metadata?.done === 'true',
    15_000,
    from,
  );
  return client.waitForReply(done.metadata!.message_id);
}

/**
 * Sends one more message and waits for its reply. A session's replies run one at a time (the spoken
 * copy of a reply included), so whatever the previous reply would still have sent has come before.
 */
async function nextReply(client: TestClient, sessionId: string) {
  const from = client.frames.length;
  client.send({ type: 'user_message', content: 'One more thing', session_id: sessionId });
  return replyAfter(client, from);
}

describe('chat through every provider type (fake OpenAI, Anthropic and Dify servers)', () => {
  let t: TestApp;
  let fakes: Fakes;
  const h = harness(() => t);

  const USAGE: Record<ProviderName, { prompt_tokens: number; completion_tokens: number }> = {
    gpt: { prompt_tokens: 11, completion_tokens: 7 },
    claude: { prompt_tokens: 23, completion_tokens: 9 },
    dify: { prompt_tokens: 31, completion_tokens: 13 },
  };
  const CHUNKS = ['Hel', 'lo ', 'from ', 'the ', 'fake', '.'];

  beforeAll(async () => {
    fakes = await startFakes();
    t = await startTestApp({
      ...providersEnv(fakes),
      STT_PROVIDER_ID: 'gpt',
      TTS_PROVIDER_ID: 'gpt',
    });
  });
  beforeEach(() => {
    for (const name of ['gpt', 'claude', 'dify'] as const)
      fakes[name].reset().script({ chunks: CHUNKS, delayMs: 5, usage: USAGE[name] });
    fakes.gpt.transcript = 'fake transcription';
  });
  afterEach(async () => {
    await Promise.all(h.clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all(Object.values(fakes ?? {}).map((fake: FakeLlmServer) => fake.close()));
  });

  describe.each(['gpt', 'claude', 'dify'] as const)('%s', (name) => {
    it('streams a reply: deltas, stored text, tokens and response times, then sends history in its own format', async () => {
      const fake = fakes[name];
      const usage = USAGE[name];
      const userId = `u-full-${name}`;
      const client = await h.connect(userId);
      const selected = await h.selectModel(client, name);
      const sessionId = selected.session_id!;

      client.send({ type: 'user_message', content: 'First question', session_id: sessionId });
      const first = await client.waitForReply();
      const loading = client.ofType('loading')[0];
      expect(loading).toMatchObject({ sender: 'ai', model_id: name, session_id: sessionId });
      const deltas = first.frames.filter((frame) => frame.metadata!.done === 'false');
      expect(deltas.map((frame) => frame.content)).toEqual(CHUNKS);
      expect(first.frames.map((frame) => frame.metadata!.seq)).toEqual(first.frames.map((_, i) => String(i)));
      for (const frame of first.frames) expect(frame).toMatchObject({ sender: 'ai', model_id: name });
      expect(first.text).toBe(CHUNKS.join(''));
      const meta = first.done.metadata!;
      expect(meta).toMatchObject({
        prompt_tokens: String(usage.prompt_tokens),
        completion_tokens: String(usage.completion_tokens),
        tokens: String(usage.prompt_tokens + usage.completion_tokens),
      });
      expect(meta.response_time_ms).toMatch(/^\d+$/);
      expect(meta.first_token_ms).toMatch(/^\d+$/);
      expect(Number(meta.first_token_ms)).toBeLessThanOrEqual(Number(meta.response_time_ms));
      expect(meta.error).toBeUndefined();

      let doc = await h.doc(sessionId);
      const stored = doc.msgs.find((message: any) => message.id === meta.message_id);
      expect(stored).toMatchObject({ type: 'ai_response', sender: 'ai', content: first.text });
      expect(stored.meta).toMatchObject({ status: 'complete', model_id: name });
      expect(stored.meta.tokens_estimated).toBeUndefined();
      expect(doc).toMatchObject({
        modelId: name,
        promptTokens: usage.prompt_tokens,
        completionTokens: usage.completion_tokens,
        totalTokens: usage.prompt_tokens + usage.completion_tokens,
        maxRespTime: Number(meta.response_time_ms),
        avgRespTime: Number(meta.response_time_ms),
      });
      const conversationId = doc.difyConversationId;
      if (name === 'dify') expect(conversationId).toMatch(/^[0-9a-f-]{36}$/);
      else expect(conversationId).toBeUndefined();

      const from = client.frames.length;
      client.send({ type: 'user_message', content: 'Second question', session_id: sessionId });
      const second = await replyAfter(client, from);
      doc = await h.doc(sessionId);
      const times = [Number(meta.response_time_ms), Number(second.done.metadata!.response_time_ms)];
      expect(doc).toMatchObject({
        promptTokens: 2 * usage.prompt_tokens,
        completionTokens: 2 * usage.completion_tokens,
        totalTokens: 2 * (usage.prompt_tokens + usage.completion_tokens),
        maxRespTime: Math.max(...times),
        avgRespTime: Math.round((times[0] + times[1]) / 2),
      });

      const requests = fake.requests.filter(
        (request) => request.method === 'POST' && !/stop$/.test(request.path),
      );
      expect(requests).toHaveLength(2);
      const { body, headers } = requests[1];
      const firstReply = CHUNKS.join('');
      if (name === 'gpt') {
        expect(headers.authorization).toBe(`Bearer ${API_KEY}`);
        expect(body).toMatchObject({
          model: 'gpt-test',
          stream: true,
          stream_options: { include_usage: true },
          messages: [
            { role: 'system', content: SYSTEM_PROMPT },
            { role: 'user', content: 'First question' },
            { role: 'assistant', content: firstReply },
            { role: 'user', content: 'Second question' },
          ],
        });
      } else if (name === 'claude') {
        expect(headers['x-api-key']).toBe(API_KEY);
        expect(headers['anthropic-version']).toBe('2023-06-01');
        expect(body).toMatchObject({ model: 'claude-test', system: SYSTEM_PROMPT, stream: true });
        expect(body.max_tokens).toBeGreaterThan(0);
        expect(body.messages).toEqual([
          { role: 'user', content: 'First question' },
          { role: 'assistant', content: firstReply },
          { role: 'user', content: 'Second question' },
        ]);
      } else {
        expect(headers.authorization).toBe(`Bearer ${API_KEY}`);
        expect(requests[0].body).toMatchObject({
          query: 'First question',
          user: userId,
          conversation_id: '',
        });
        expect(body).toEqual({
          inputs: {},
          query: 'Second question',
          response_mode: 'streaming',
          user: userId,
          conversation_id: conversationId,
        });
      }
    });

    it('a stream cut mid-reply stores the text so far with meta.status "error"', async () => {
      fakes[name].scriptOnce({ chunks: ['one ', 'two ', 'three ', 'four'], cutAfter: 2 });
      const client = await h.connect(`u-cut-${name}`);
      const sessionId = (await h.selectModel(client, name)).session_id!;
      client.send({ type: 'user_message', content: 'Cut me off', session_id: sessionId });
      const error = await client.waitForType('error');
      expect(error.error).toMatchObject({ code: 'LLM_ERROR', recoverable: true });
      const { done, text } = await client.waitForReply();
      expect(text).toBe('one two ');
      expect(done.metadata).toMatchObject({ error: 'LLM_ERROR' });
      expect(client.frames.indexOf(error)).toBeLessThan(client.frames.indexOf(done));
      const stored = (await h.doc(sessionId)).msgs.find((m: any) => m.id === done.metadata!.message_id);
      expect(stored).toMatchObject({ content: 'one two ', sender: 'ai' });
      expect(stored.meta).toMatchObject({ status: 'error', error: 'LLM_ERROR' });
    });
  });

  it('model_select switches between providers of different types; connect lists the models in order', async () => {
    const client = await h.connect('u-switch');
    expect(client.ofType('connection_status')[0].models).toEqual([
      { id: 'gpt', name: 'GPT fake' },
      { id: 'claude', name: 'Claude fake' },
      { id: 'dify', name: 'Dify fake' },
    ]);
    client.send({ type: 'user_message', content: 'Default model please' });
    const first = await client.waitForReply();
    const sessionId = first.done.session_id!;
    expect(first.done.model_id).toBe('gpt');
    expect(fakes.gpt.requestsTo('/chat/completions')).toHaveLength(1);

    const before = Date.now();
    const changed = await h.selectModel(client, 'claude');
    expect(changed).toMatchObject({
      sender: 'system',
      session_id: sessionId,
      model_id: 'claude',
      content: 'Model changed to claude',
    });
    expect(Math.abs(Date.parse(changed.timestamp!) - before)).toBeLessThan(5_000);
    expect((await h.doc(sessionId)).modelId).toBe('claude');

    let from = client.frames.length;
    client.send({ type: 'user_message', content: 'Now Claude', session_id: sessionId });
    const second = await replyAfter(client, from);
    expect(second.frames.every((frame) => frame.model_id === 'claude')).toBe(true);
    expect(fakes.claude.requestsTo('/messages')).toHaveLength(1);
    expect(fakes.gpt.requestsTo('/chat/completions')).toHaveLength(1);

    await h.selectModel(client, 'dify');
    expect((await h.doc(sessionId)).modelId).toBe('dify');
    from = client.frames.length;
    client.send({ type: 'user_message', content: 'Now Dify', session_id: sessionId });
    const third = await replyAfter(client, from);
    expect(third.done.model_id).toBe('dify');
    expect(fakes.dify.requestsTo('/chat-messages')).toHaveLength(1);
    expect(fakes.claude.requestsTo('/messages')).toHaveLength(1);
  });

  it('HTTP 500 on every attempt: LLM_UNAVAILABLE to the sending socket only, then one done frame', async () => {
    const tab1 = await h.connect('u-500');
    tab1.send({ type: 'user_message', content: 'Warm up' });
    const warm = await tab1.waitForReply();
    const sessionId = warm.done.session_id!;
    const tab2 = await h.connect('u-500', sessionId);
    fakes.gpt.reset().scriptOnce({ status: 500 }, 3);

    const from1 = tab1.frames.length;
    const from2 = tab2.frames.length;
    tab1.send({ type: 'user_message', content: 'Fail please', session_id: sessionId });
    const error = await tab1.waitFor((frame) => frame.type === 'error', 10_000, from1);
    expect(error).toMatchObject({ sender: 'system', session_id: sessionId });
    expect(error.error).toMatchObject({ code: 'LLM_UNAVAILABLE', recoverable: true });
    const reply = await replyAfter(tab1, from1);
    expect(reply.done.metadata).toMatchObject({ error: 'LLM_UNAVAILABLE', done: 'true' });
    expect(reply.text).toBe('');
    await tab2.waitFor(
      (frame) =>
        frame.metadata?.done === 'true' && frame.metadata.message_id === reply.done.metadata!.message_id,
      5_000,
      from2,
    );
    expect(fakes.gpt.requestsTo('/chat/completions')).toHaveLength(3);
    const next = await nextReply(tab1, sessionId);
    await tab2.waitFor(
      (frame) =>
        frame.metadata?.done === 'true' && frame.metadata.message_id === next.done.metadata!.message_id,
      5_000,
      from2,
    );
    const failedId = reply.done.metadata!.message_id;
    const doneFrames = (client: TestClient, from: number) =>
      client.frames
        .slice(from)
        .filter(
          (frame) =>
            frame.type === 'ai_response' &&
            frame.metadata?.done === 'true' &&
            frame.metadata.message_id === failedId,
        );
    expect(doneFrames(tab1, from1)).toHaveLength(1);
    expect(doneFrames(tab2, from2)).toHaveLength(1);
    expect(tab1.frames.indexOf(error)).toBeLessThan(tab1.frames.indexOf(reply.done));
    expect(tab1.frames.slice(from1).filter((frame) => frame.type === 'error')).toHaveLength(1);
    expect(tab2.frames.slice(from2).filter((frame) => frame.type === 'error')).toHaveLength(0);
  });

  it.each(['claude', 'dify'] as const)(
    'stop_generation with %s: the fake sees the client close within 1 s, the reply is stored as stopped',
    async (name) => {
      const fake = fakes[name];
      fake.script({
        chunks: Array.from({ length: 40 }, (_, i) => `c${i} `),
        delayMs: 50,
        usage: USAGE[name],
      });
      const client = await h.connect(`u-stop-${name}`);
      const sessionId = (await h.selectModel(client, name)).session_id!;
      client.send({ type: 'user_message', content: 'Talk for a while', session_id: sessionId });
      await client.waitFor((frame) => frame.type === 'ai_response' && frame.metadata?.seq === '2');
      const stoppedAt = Date.now();
      client.send({ type: 'stop_generation', session_id: sessionId });
      const closed = await fake.waitForClientClose(1_000);
      expect(closed.at - stoppedAt).toBeLessThan(1_000);
      const { done, text } = await client.waitForReply();
      expect(done.metadata).toMatchObject({ stopped: 'true' });
      const stored = (await h.doc(sessionId)).msgs.find((m: any) => m.id === done.metadata!.message_id);
      expect(stored.content).toBe(text);
      expect(stored.meta.status).toBe('stopped');
      if (name === 'dify') {
        await until(() => fakes.dify.stopRequests().length > 0, 2_000);
        expect(fakes.dify.stopRequests()[0].body).toEqual({ user: `u-stop-${name}` });
        expect(fakes.dify.stopRequests()[0].path).toBe(`/v1/chat-messages/${fakes.dify.taskIds[0]}/stop`);
      }
    },
  );

  describe('text to speech (TTS_PROVIDER_ID)', () => {
    /** A session with one text exchange, then a voice note; `from` = frame index before the note. */
    async function voiceNote(
      userId: string,
    ): Promise<{ client: TestClient; sessionId: string; from: number }> {
      const { body } = await uploadFile(t, userToken(userId), {
        bytes: wavFile(1_000),
        name: 'note.wav',
        type: 'audio/wav',
      });
      const client = await h.connect(userId);
      client.send({ type: 'user_message', content: 'Hello.' });
      const sessionId = (await client.waitForReply()).done.session_id!;
      const from = client.frames.length;
      client.send({ type: 'voice_message', session_id: sessionId, file_id: body.file_id });
      return { client, sessionId, from };
    }

    it('a reply to a voice note is also sent as a voice_message from ai whose file_url plays the speech', async () => {
      fakes.gpt.transcript = 'Read me the news';
      fakes.gpt.speechAudio = Buffer.from('ID3 fake speech for the news reply');
      const { client, sessionId, from: noteAt } = await voiceNote('u-tts');
      const voice = await client.waitFor((frame) => frame.type === 'voice_message' && frame.sender === 'ai');
      const reply = await replyAfter(client, noteAt);
      expect(reply.text).toBe(CHUNKS.join(''));
      expect(client.frames.indexOf(reply.done)).toBeLessThan(client.frames.indexOf(voice));
      expect(voice).toMatchObject({ session_id: sessionId, model_id: 'gpt' });
      expect(voice.metadata).toMatchObject({
        reply_id: reply.done.metadata!.message_id,
        mime_type: 'audio/mpeg',
      });
      expect(voice.file_url).toMatch(
        new RegExp(`^/chatbox/files/${voice.file_id}\\?expires=\\d+&signature=`),
      );

      const download = await fetch(absolute(t, voice.file_url as string));
      expect(download.status).toBe(200);
      expect(download.headers.get('content-type')).toMatch(/^audio\/mpeg/);
      expect(Buffer.from(await download.arrayBuffer()).equals(fakes.gpt.speechAudio)).toBe(true);

      const speech = fakes.gpt.requestsTo('/audio/speech');
      expect(speech).toHaveLength(1);
      expect(speech[0].body).toMatchObject({ input: reply.text, model: 'gpt-test', voice: 'alloy' });

      const doc = await h.doc(sessionId);
      const stored = doc.msgs.find((message: any) => message.id === voice.id);
      expect(stored).toMatchObject({
        type: 'voice_message',
        sender: 'ai',
        fileId: voice.file_id,
        fileUrl: `/chatbox/files/${voice.file_id}`,
      });
      const upload = await t.db.collection('uploads').findOne({ _id: voice.file_id as never });
      expect(upload).toMatchObject({ uid: 'u-tts', mime: 'audio/mpeg', size: fakes.gpt.speechAudio.length });
      // The spoken copy does not go back to the model as a second assistant turn.
      const from = client.frames.length;
      client.send({ type: 'user_message', content: 'Thanks', session_id: sessionId });
      await replyAfter(client, from);
      const messages = fakes.gpt.requestsTo('/chat/completions').at(-1)!.body.messages;
      expect(messages.map((m: any) => m.role)).toEqual([
        'system',
        'user',
        'assistant',
        'user',
        'assistant',
        'user',
      ]);
      expect(messages[3]).toEqual({ role: 'user', content: 'Read me the news' });
    });

    it('a typed message gets no voice reply; a TTS failure leaves the text reply intact', async () => {
      const client = await h.connect('u-tts-text');
      client.send({ type: 'user_message', content: 'Just text.' });
      const typed = await client.waitForReply();
      await nextReply(client, typed.done.session_id!);
      expect(client.frames.filter((frame) => frame.type === 'voice_message')).toHaveLength(0);
      expect(fakes.gpt.requestsTo('/audio/speech')).toHaveLength(0);

      fakes.gpt.reset();
      // Requests in order: the warm-up reply, the transcription, the reply, the speech.
      fakes.gpt
        .scriptOnce({ chunks: ['Warm.'] })
        .scriptOnce({})
        .scriptOnce({ chunks: ['Still ', 'here.'] })
        .scriptOnce({ status: 500 });
      const { client: voiceClient, sessionId, from: noteAt } = await voiceNote('u-tts-fail');
      const reply = (await replyAfter(voiceClient, noteAt)).done;
      await nextReply(voiceClient, sessionId);
      expect(fakes.gpt.requestsTo('/audio/speech')).toHaveLength(1);
      expect(voiceClient.frames.filter((f) => f.type === 'voice_message' && f.sender === 'ai')).toHaveLength(
        0,
      );
      expect(voiceClient.frames.filter((f) => f.type === 'error')).toHaveLength(0);
      expect(reply.metadata!.error).toBeUndefined();
      const doc = await h.doc(sessionId);
      const stored = doc.msgs.find((m: any) => m.id === reply.metadata!.message_id);
      expect(stored).toMatchObject({ content: 'Still here.', meta: { status: 'complete' } });
      expect(doc.msgs.filter((m: any) => m.sender === 'ai' && m.type === 'voice_message')).toHaveLength(0);
    });
  });

  it('Dify message_file: fetched and stored as an AI file_upload; an unreachable file keeps its external URL', async () => {
    fakes.dify.servedFiles.set('/files/tools/chart.png', { bytes: PNG, type: 'image/png' });
    fakes.dify.script({
      chunks: ['Here is ', 'your chart.'],
      usage: USAGE.dify,
      files: [
        { url: '/files/tools/chart.png?timestamp=1&nonce=n&sign=s', type: 'image' },
        { url: '/files/tools/gone.png?sign=x', type: 'image' },
      ],
    });
    const client = await h.connect('u-dify-files');
    const sessionId = (await h.selectModel(client, 'dify')).session_id!;
    client.send({ type: 'user_message', content: 'Draw me a chart', session_id: sessionId });
    const reply = await client.waitForReply();
    expect(reply.text).toBe('Here is your chart.');
    const fileFrames: Frame[] = [];
    fileFrames.push(await client.waitFor((frame) => frame.type === 'file_upload'));
    fileFrames.push(await client.waitFor((frame) => frame.type === 'file_upload' && frame !== fileFrames[0]));
    const [stored, external] = fileFrames;
    expect(client.frames.indexOf(reply.done)).toBeLessThan(client.frames.indexOf(stored));

    expect(stored).toMatchObject({ sender: 'ai', session_id: sessionId, model_id: 'dify' });
    expect(stored.metadata).toMatchObject({
      reply_id: reply.done.metadata!.message_id,
      file_name: 'chart.png',
      mime_type: 'image/png',
      file_size: String(PNG.length),
    });
    expect(stored.file_url).toMatch(
      new RegExp(`^/chatbox/files/${stored.file_id}\\?expires=\\d+&signature=`),
    );
    const download = await fetch(absolute(t, stored.file_url as string));
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toMatch(/^image\/png/);
    expect(Buffer.from(await download.arrayBuffer()).equals(PNG)).toBe(true);

    expect(external).toMatchObject({
      sender: 'ai',
      file_url: `${fakes.dify.url}/files/tools/gone.png?sign=x`,
    });
    expect(external.file_id).toBeUndefined();
    expect(external.metadata).toMatchObject({ external: 'true', mime_type: 'image/png' });

    const doc = await h.doc(sessionId);
    const files = doc.msgs.filter((m: any) => m.type === 'file_upload');
    expect(files).toEqual([
      expect.objectContaining({
        sender: 'ai',
        fileId: stored.file_id,
        fileUrl: `/chatbox/files/${stored.file_id}`,
      }),
      expect.objectContaining({ sender: 'ai', fileUrl: external.file_url }),
    ]);
    expect(files[1].fileId).toBeUndefined();
    const upload = await t.db.collection('uploads').findOne({ _id: stored.file_id as never });
    expect(upload).toMatchObject({ uid: 'u-dify-files', mime: 'image/png', size: PNG.length });

    // History re-signs the stored copy and returns the external link as it is.
    const history = await fetch(`${t.baseUrl}/sessions/${sessionId}`, {
      headers: { Authorization: `Bearer ${userToken('u-dify-files')}` },
    }).then((response) => response.json() as Promise<any>);
    const viewed = history.messages.filter((m: any) => m.type === 'file_upload');
    expect(viewed[0]).toMatchObject({ sender: 'ai', file_id: stored.file_id });
    expect(viewed[0].file_url).toMatch(/\?expires=\d+&signature=/);
    expect(viewed[1]).toMatchObject({ sender: 'ai', file_url: external.file_url });
  });
});

describe('first-token timeout through the socket (LLM_FIRST_TOKEN_TIMEOUT=300ms)', () => {
  let t: TestApp;
  let fakes: Fakes;
  const h = harness(() => t);

  beforeAll(async () => {
    fakes = await startFakes();
    t = await startTestApp({ ...providersEnv(fakes), LLM_FIRST_TOKEN_TIMEOUT: '300ms' });
  });
  afterEach(async () => {
    await Promise.all(h.clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all(Object.values(fakes ?? {}).map((fake: FakeLlmServer) => fake.close()));
  });

  it.each(['gpt', 'claude', 'dify'] as const)(
    '%s hanging before headers: LLM_TIMEOUT, one done frame, nothing stored',
    async (name) => {
      fakes[name].reset().script({ hang: true });
      const client = await h.connect(`u-hang-${name}`);
      const sessionId = (await h.selectModel(client, name)).session_id!;
      const sentAt = Date.now();
      client.send({ type: 'user_message', content: 'Are you there?', session_id: sessionId });
      const error = await client.waitForType('error', 5_000);
      expect(error.error).toMatchObject({ code: 'LLM_TIMEOUT', recoverable: true });
      const { done, text } = await client.waitForReply();
      expect(Date.now() - sentAt).toBeLessThan(3_000);
      expect(text).toBe('');
      expect(done.metadata).toMatchObject({ error: 'LLM_TIMEOUT', done: 'true' });
      await fakes[name].waitForClientClose(2_000);
      const doc = await h.doc(sessionId);
      expect(doc.msgs.filter((m: any) => m.sender === 'ai')).toHaveLength(0);
    },
  );
});
