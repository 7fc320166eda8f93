import { Logger, LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { firstValueFrom, Observable, toArray } from 'rxjs';
import { AppConfigModule, Environment, loadConfig } from '@chatbox/common';
import {
  isVoiceUnavailableError,
  LLM_RETRY_ATTEMPTS,
  LlmModule,
  LlmObserverEvent,
  LlmService,
  ProviderFailingAlert,
  ReplyEvent,
  ReplyRequest,
} from '@chatbox/llm';
import {
  FakeAnthropic,
  FakeDify,
  FakeLlmServer,
  FakeOpenAi,
  startFakeAnthropic,
  startFakeDify,
  startFakeOpenAi,
} from '../support/fake-llm';
import { until } from '../support/until';

const API_KEY = 'sk-test-secret-key-123456';
const SYSTEM_PROMPT = 'You are the test assistant.';

function serviceFor(env: Environment): LlmService {
  return new LlmService(loadConfig({ NODE_ENV: 'test', LLM_SYSTEM_PROMPT: SYSTEM_PROMPT, ...env }));
}

function providerEnv(type: string, endpoint: string, extra: Environment = {}): Environment {
  return {
    LLM_PROVIDER_1_ID: `${type}-1`,
    LLM_PROVIDER_1_TYPE: type,
    LLM_PROVIDER_1_ENDPOINT: endpoint,
    LLM_PROVIDER_1_API_KEY: API_KEY,
    LLM_PROVIDER_1_MODEL: `${type}-model`,
    ...extra,
  };
}

function request(modelId: string, overrides: Partial<ReplyRequest> = {}): ReplyRequest {
  return {
    modelId,
    userId: 'user-1',
    sessionId: 'session-1',
    history: [
      { role: 'user', content: 'First question' },
      { role: 'assistant', content: 'First answer' },
      { role: 'assistant', content: 'I am a human helper', staff: true },
      { role: 'user', content: 'Second question' },
    ],
    ...overrides,
  };
}

function collect(stream: Observable<ReplyEvent>): Promise<ReplyEvent[]> {
  return firstValueFrom(stream.pipe(toArray()));
}

function deltas(events: ReplyEvent[]): string[] {
  return events.flatMap((event) => (event.kind === 'delta' ? [event.text] : []));
}

function usageOf(events: ReplyEvent[]) {
  return events.find((event) => event.kind === 'usage');
}

/** Subscribes, waits for the first delta, unsubscribes; returns when it unsubscribed. */
async function unsubscribeAfterFirstDelta(
  stream: Observable<ReplyEvent>,
): Promise<{ at: number; events: ReplyEvent[] }> {
  const events: ReplyEvent[] = [];
  const subscription = stream.subscribe((event) => events.push(event));
  await until(() => events.some((event) => event.kind === 'delta'), 5_000, 10);
  subscription.unsubscribe();
  return { at: Date.now(), events };
}

function last(events: ReplyEvent[]): ReplyEvent {
  return events[events.length - 1];
}

function expectOneTerminal(events: ReplyEvent[]): void {
  const terminals = events.filter((event) => event.kind === 'end' || event.kind === 'error');
  expect(terminals).toHaveLength(1);
  expect(terminals[0]).toBe(last(events));
}

/** Captures Nest Logger output (all levels) for the assertions on operator logs. */
class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  log(message: unknown) {
    this.lines.push(String(message));
  }
  error(message: unknown) {
    this.lines.push(String(message));
  }
  warn(message: unknown) {
    this.lines.push(String(message));
  }
  debug(message: unknown) {
    this.lines.push(String(message));
  }
  verbose(message: unknown) {
    this.lines.push(String(message));
  }
}

let logs: CapturingLogger;
beforeEach(() => {
  logs = new CapturingLogger();
  Logger.overrideLogger(logs);
});

const LONG_REPLY = Array.from({ length: 50 }, (_, i) => `w${i} `);

/**
 * The failure and timing scenarios every provider must handle the same way: they run against each
 * fake with the provider's own wire format.
 */
function commonScenarios(type: 'openai' | 'anthropic' | 'dify', fake: () => FakeLlmServer, path: string) {
  const id = `${type}-1`;
  const make = (extra: Environment = {}) => serviceFor(providerEnv(type, fake().url, extra));

  it('retries once after 429, waiting at least Retry-After', async () => {
    fake()
      .scriptOnce({ status: 429, retryAfter: '1' })
      .script({ chunks: ['after ', 'retry'] });
    const events = await collect(make().stream(request(id)));
    expect(deltas(events).join('')).toBe('after retry');
    expect(last(events).kind).toBe('end');
    const attempts = fake().requestsTo(path);
    expect(attempts).toHaveLength(2);
    expect(attempts[1].at - attempts[0].at).toBeGreaterThanOrEqual(1_000);
  });

  it('retries 5xx before the first token and then succeeds', async () => {
    fake()
      .scriptOnce({ status: 500 }, LLM_RETRY_ATTEMPTS - 1)
      .script({ chunks: ['fine'] });
    const events = await collect(make().stream(request(id)));
    expect(deltas(events)).toEqual(['fine']);
    expect(last(events).kind).toBe('end');
    expect(fake().requestsTo(path)).toHaveLength(LLM_RETRY_ATTEMPTS);
  });

  it(`answers LLM_UNAVAILABLE after ${LLM_RETRY_ATTEMPTS} failed attempts with 500`, async () => {
    fake().script({ status: 500 });
    const events = await collect(make().stream(request(id)));
    expect(events).toEqual([{ kind: 'error', code: 'LLM_UNAVAILABLE', message: expect.any(String) }]);
    expect(fake().requestsTo(path)).toHaveLength(LLM_RETRY_ATTEMPTS);
  });

  it('reports LLM_ERROR after the text so far when the connection is cut mid-stream, without retry', async () => {
    fake().script({ chunks: ['one ', 'two ', 'three'], cutAfter: 2, delayMs: 5 });
    const events = await collect(make().stream(request(id)));
    expect(deltas(events).join('')).toBe('one two ');
    expect(last(events)).toMatchObject({ kind: 'error', code: 'LLM_ERROR' });
    expect(usageOf(events)).toMatchObject({ estimated: true, completionTokens: 2 });
    expectOneTerminal(events);
    expect(fake().requestsTo(path)).toHaveLength(1);
  });

  it('reports LLM_ERROR when the response ends cleanly without its end marker', async () => {
    fake().script({ chunks: ['partial ', 'text'], omitEnd: true });
    const events = await collect(make().stream(request(id)));
    expect(deltas(events).join('')).toBe('partial text');
    expect(last(events)).toMatchObject({ kind: 'error', code: 'LLM_ERROR' });
    expectOneTerminal(events);
    expect(fake().requestsTo(path)).toHaveLength(1);
  });

  it('answers LLM_TIMEOUT after the first-token timeout when the provider hangs before headers', async () => {
    fake().script({ hang: true });
    const started = Date.now();
    const events = await collect(make({ LLM_FIRST_TOKEN_TIMEOUT: '300ms' }).stream(request(id)));
    const elapsed = Date.now() - started;
    expect(events).toEqual([{ kind: 'error', code: 'LLM_TIMEOUT', message: expect.any(String) }]);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1_500);
    const closed = await fake().waitForClientClose(1_000);
    expect(closed.path).toMatch(new RegExp(`${path}$`));
  });

  it('keeps the deltas and answers LLM_TIMEOUT when the whole reply takes too long', async () => {
    fake().script({ chunks: LONG_REPLY, delayMs: 40 });
    const events = await collect(make({ LLM_STREAM_TIMEOUT: '400ms' }).stream(request(id)));
    expect(deltas(events).length).toBeGreaterThan(0);
    expect(deltas(events).length).toBeLessThan(LONG_REPLY.length);
    expect(last(events)).toMatchObject({ kind: 'error', code: 'LLM_TIMEOUT' });
    expectOneTerminal(events);
    await fake().waitForClientClose(1_000);
  });

  it('answers 401 with LLM_ERROR, no retry, and an operator log naming the provider but not the key', async () => {
    fake().script({ status: 401 });
    const events = await collect(make().stream(request(id)));
    expect(events).toEqual([{ kind: 'error', code: 'LLM_ERROR', message: expect.any(String) }]);
    const message = (events[0] as { message: string }).message;
    expect(message).not.toMatch(/fake error|401/);
    expect(fake().requestsTo(path)).toHaveLength(1);
    const line = logs.lines.find((entry) => entry.includes(id) && entry.includes('401'));
    expect(line).toBeDefined();
    expect(logs.lines.join('\n')).not.toContain(API_KEY);
  });

  it('estimates usage (characters / 4) only when the provider reports none, and marks it', async () => {
    fake().script({ chunks: ['12345678'], usage: null });
    const events = await collect(make().stream(request(id)));
    expect(usageOf(events)).toMatchObject({ kind: 'usage', completionTokens: 2, estimated: true });
    expect((usageOf(events) as any).promptTokens).toBeGreaterThan(0);
    expect(last(events).kind).toBe('end');
  });

  it('cancels the upstream request within 1 s when the subscriber unsubscribes mid-stream', async () => {
    fake().script({ chunks: LONG_REPLY, delayMs: 50 });
    const { at, events } = await unsubscribeAfterFirstDelta(make().stream(request(id)));
    const closed = await fake().waitForClientClose(1_000);
    expect(closed.at - at).toBeLessThan(1_000);
    expect(events.some((event) => event.kind === 'end' || event.kind === 'error')).toBe(false);
  });
}

describe('openai provider', () => {
  let fake: FakeOpenAi;
  let llm: LlmService;
  beforeAll(async () => {
    fake = await startFakeOpenAi();
  });
  afterAll(() => fake.close());
  beforeEach(() => {
    fake.reset();
    llm = serviceFor(providerEnv('openai', `${fake.url}/v1`));
  });

  it('streams deltas and reports the usage the provider gave', async () => {
    fake.script({
      chunks: ['Hel', 'lo', ' there'],
      usage: { prompt_tokens: 11, completion_tokens: 3 },
      delayMs: 5,
    });
    const events = await collect(llm.stream(request('openai-1')));
    expect(deltas(events).join('')).toBe('Hello there');
    expect(events).toContainEqual({ kind: 'usage', promptTokens: 11, completionTokens: 3 });
    expect(last(events)).toEqual({ kind: 'end' });
    expectOneTerminal(events);
  });

  it('sends the system prompt, prior turns and stream options in the OpenAI format', async () => {
    fake.script({ chunks: ['ok'] });
    await collect(llm.stream(request('openai-1')));
    expect(fake.requests).toHaveLength(1);
    const received = fake.requests[0];
    expect(received.method).toBe('POST');
    expect(received.path).toBe('/v1/chat/completions');
    expect(received.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(received.body).toMatchObject({
      model: 'openai-model',
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        { role: 'system', content: SYSTEM_PROMPT },
        { role: 'user', content: 'First question' },
        { role: 'assistant', content: 'First answer' },
        { role: 'assistant', content: '[Staff] I am a human helper' },
        { role: 'user', content: 'Second question' },
      ],
    });
  });

  it('uses the provider system prompt over LLM_SYSTEM_PROMPT and a dummy key when none is set', async () => {
    const local = serviceFor({
      ...providerEnv('openai', fake.url, { LLM_PROVIDER_1_SYSTEM_PROMPT: 'Provider prompt' }),
      LLM_PROVIDER_1_API_KEY: '',
    });
    fake.script({ chunks: ['ok'] });
    await collect(local.stream(request('openai-1')));
    expect(fake.requests[0].body.messages[0]).toEqual({ role: 'system', content: 'Provider prompt' });
    expect(fake.requests[0].headers.authorization).toMatch(/^Bearer \S+/);
  });

  it('feeds the metrics observer: request, first token latency, tokens, done', async () => {
    const seen: LlmObserverEvent[] = [];
    llm.observe((event) => seen.push(event));
    fake.script({ chunks: ['a', 'b'], usage: { prompt_tokens: 7, completion_tokens: 2 } });
    await collect(llm.stream(request('openai-1')));
    expect(seen.map((event) => event.kind)).toEqual(['request', 'first_token', 'tokens', 'done']);
    expect(seen.every((event) => event.provider === 'openai-1')).toBe(true);
    expect(seen[1].value).toBeGreaterThanOrEqual(0);
    expect(seen[2].value).toBe(9);
    expect(seen[3].outcome).toBe('end');
  });

  it('announces a failing provider after 5 consecutive failures, once', async () => {
    const alerts: ProviderFailingAlert[] = [];
    llm.providerFailing$.subscribe((alert) => alerts.push(alert));
    const errors: LlmObserverEvent[] = [];
    llm.observe((event) => event.kind === 'error' && errors.push(event));
    fake.script({ status: 401 });
    for (let index = 0; index < 4; index++)
      await collect(llm.stream(request('openai-1', { userId: `u${index % 2}` })));
    expect(alerts).toHaveLength(0);
    await collect(llm.stream(request('openai-1', { userId: 'u2' })));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      provider: 'openai-1',
      reason: 'consecutive',
      consecutiveFailures: 5,
      affectedUsers: 3,
    });
    expect(llm.isProviderFailing('openai-1')).toBe(true);
    await collect(llm.stream(request('openai-1')));
    expect(alerts).toHaveLength(1);
    expect(errors).toHaveLength(6);
  });

  it('treats an error object inside the stream as LLM_ERROR after the text so far, without retry', async () => {
    fake.script({ chunks: ['so far'], errorEvent: { type: 'server_error', message: 'model crashed' } });
    const events = await collect(llm.stream(request('openai-1')));
    expect(deltas(events)).toEqual(['so far']);
    expect(last(events)).toMatchObject({ kind: 'error', code: 'LLM_ERROR' });
    expect((last(events) as any).message).not.toContain('model crashed');
    expectOneTerminal(events);
    expect(fake.requests).toHaveLength(1);
    expect(logs.lines.some((line) => line.includes('openai-1') && line.includes('model crashed'))).toBe(true);
  });

  it('treats an error object before any text as LLM_ERROR, not as a retryable outage', async () => {
    fake.script({ chunks: [], errorEvent: { message: 'context too long', code: 'context_length_exceeded' } });
    const events = await collect(llm.stream(request('openai-1')));
    expect(events).toEqual([{ kind: 'error', code: 'LLM_ERROR', message: expect.any(String) }]);
    expect(fake.requests).toHaveLength(1);
  });

  it('treats unreadable stream data as LLM_ERROR, without retry', async () => {
    fake.script({ chunks: [], rawData: ['{"choices": [ not json'] });
    const events = await collect(llm.stream(request('openai-1')));
    expect(events).toEqual([{ kind: 'error', code: 'LLM_ERROR', message: expect.any(String) }]);
    expect(fake.requests).toHaveLength(1);
    expect(logs.lines.some((line) => line.includes('openai-1') && line.includes('unreadable'))).toBe(true);
  });

  it('passes the deltas of one network read on as one (fewer frames for a busy process), in order', async () => {
    // Written in one go by a server in this process: they arrive together, and are read together.
    const chunks = Array.from({ length: 20 }, (_, i) => `t${i} `);
    fake.script({ chunks, usage: { prompt_tokens: 1, completion_tokens: 20 } });
    const events = await collect(llm.stream(request('openai-1')));
    expect(deltas(events).join('')).toBe(chunks.join(''));
    expect(deltas(events).length).toBeLessThan(chunks.length);
    expect(events).toContainEqual({ kind: 'usage', promptTokens: 1, completionTokens: 20 });
    expectOneTerminal(events);
  });

  it('ends the reply at [DONE] without finish_reason or usage, and ignores data after it', async () => {
    const late = { choices: [{ index: 0, delta: { content: 'late' }, finish_reason: null }] };
    fake.script({
      chunks: ['one ', 'two'],
      usage: null,
      omitEnd: true,
      rawData: ['[DONE]', JSON.stringify(late)],
    });
    const events = await collect(llm.stream(request('openai-1')));
    expect(deltas(events).join('')).toBe('one two');
    expect(usageOf(events)).toMatchObject({ estimated: true });
    expect(last(events)).toEqual({ kind: 'end' });
    expectOneTerminal(events);
  });

  commonScenarios('openai', () => fake, '/chat/completions');
});

describe('anthropic provider', () => {
  let fake: FakeAnthropic;
  let llm: LlmService;
  beforeAll(async () => {
    fake = await startFakeAnthropic();
  });
  afterAll(() => fake.close());
  beforeEach(() => {
    fake.reset();
    llm = serviceFor(providerEnv('anthropic', `${fake.url}/v1`));
  });

  it('streams deltas and reports input/output tokens from message_start and message_delta', async () => {
    fake.script({ chunks: ['Bon', 'jour'], usage: { prompt_tokens: 21, completion_tokens: 4 }, delayMs: 5 });
    const events = await collect(llm.stream(request('anthropic-1')));
    expect(deltas(events).join('')).toBe('Bonjour');
    expect(events).toContainEqual({ kind: 'usage', promptTokens: 21, completionTokens: 4 });
    expect(last(events)).toEqual({ kind: 'end' });
    expectOneTerminal(events);
  });

  it('sends a top-level system prompt and alternating roles starting with user', async () => {
    fake.script({ chunks: ['ok'] });
    await collect(
      llm.stream(
        request('anthropic-1', {
          history: [
            { role: 'assistant', content: 'Welcome!' },
            { role: 'user', content: 'Hi' },
            { role: 'user', content: 'Anyone there?' },
            { role: 'assistant', content: 'Yes' },
            { role: 'assistant', content: 'A person will help', staff: true },
            { role: 'user', content: 'Thanks' },
          ],
        }),
      ),
    );
    const received = fake.requests[0];
    expect(received.path).toBe('/v1/messages');
    expect(received.headers['x-api-key']).toBe(API_KEY);
    expect(received.headers['anthropic-version']).toBe('2023-06-01');
    expect(received.body).toMatchObject({
      model: 'anthropic-model',
      system: SYSTEM_PROMPT,
      stream: true,
      max_tokens: expect.any(Number),
      messages: [
        { role: 'user', content: 'Hi\n\nAnyone there?' },
        { role: 'assistant', content: 'Yes\n\n[Staff] A person will help' },
        { role: 'user', content: 'Thanks' },
      ],
    });
  });

  it('treats an error event after text as LLM_ERROR, not a normal end', async () => {
    fake.script({ chunks: ['some ', 'text'], errorEvent: { type: 'invalid_request_error', message: 'bad' } });
    const events = await collect(llm.stream(request('anthropic-1')));
    expect(deltas(events).join('')).toBe('some text');
    expect(last(events)).toMatchObject({ kind: 'error', code: 'LLM_ERROR' });
    expect(fake.requests).toHaveLength(1);
  });

  it('retries an overloaded error event that came before any text', async () => {
    fake
      .scriptOnce({ chunks: [], errorEvent: { type: 'overloaded_error', message: 'Overloaded' } })
      .script({ chunks: ['ok'] });
    const events = await collect(llm.stream(request('anthropic-1')));
    expect(deltas(events)).toEqual(['ok']);
    expect(last(events).kind).toBe('end');
    expect(fake.requests).toHaveLength(2);
  });

  it('accepts an endpoint without /v1', async () => {
    const plain = serviceFor(providerEnv('anthropic', fake.url));
    fake.script({ chunks: ['ok'] });
    const events = await collect(plain.stream(request('anthropic-1')));
    expect(last(events).kind).toBe('end');
    expect(fake.requests[0].path).toBe('/v1/messages');
  });

  commonScenarios('anthropic', () => fake, '/messages');
});

describe('dify provider', () => {
  let fake: FakeDify;
  let llm: LlmService;
  beforeAll(async () => {
    fake = await startFakeDify();
  });
  afterAll(() => fake.close());
  beforeEach(() => {
    fake.reset();
    llm = serviceFor(providerEnv('dify', `${fake.url}/v1`));
  });

  it('streams answers, reports usage and returns the conversation id, which the next request sends', async () => {
    fake.script({
      chunks: ['Dify ', 'says hi'],
      usage: { prompt_tokens: 30, completion_tokens: 6 },
      conversationId: 'conv-1',
    });
    const first = await collect(llm.stream(request('dify-1')));
    expect(deltas(first).join('')).toBe('Dify says hi');
    expect(first).toContainEqual({ kind: 'usage', promptTokens: 30, completionTokens: 6 });
    expect(last(first)).toEqual({ kind: 'end', conversationId: 'conv-1' });
    expectOneTerminal(first);

    fake.script({ chunks: ['again'] });
    await collect(llm.stream(request('dify-1', { conversationId: 'conv-1' })));
    const [firstRequest, secondRequest] = fake.requestsTo('/chat-messages');
    expect(firstRequest.path).toBe('/v1/chat-messages');
    expect(firstRequest.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(firstRequest.body).toEqual({
      inputs: {},
      query: 'Second question',
      response_mode: 'streaming',
      user: 'user-1',
      conversation_id: '',
    });
    expect(secondRequest.body).toMatchObject({
      query: 'Second question',
      user: 'user-1',
      conversation_id: 'conv-1',
    });
  });

  it('turns message_file events into file events with absolute URLs', async () => {
    fake.script({
      chunks: ['Here is a picture'],
      files: [{ url: '/files/tools/abc.png?timestamp=1&sign=x', type: 'image' }],
    });
    const events = await collect(llm.stream(request('dify-1')));
    expect(events).toContainEqual({
      kind: 'file',
      url: `${fake.url}/files/tools/abc.png?timestamp=1&sign=x`,
      mimeType: 'image/png',
      name: 'abc.png',
    });
    expect(last(events).kind).toBe('end');
  });

  it('treats an error event as LLM_ERROR', async () => {
    fake.script({
      chunks: ['so far'],
      errorEvent: { code: 'completion_request_error', message: 'model failed' },
    });
    const events = await collect(llm.stream(request('dify-1')));
    expect(deltas(events)).toEqual(['so far']);
    expect(last(events)).toMatchObject({ kind: 'error', code: 'LLM_ERROR' });
    expect((last(events) as any).message).not.toContain('model failed');
  });

  it('calls the stop endpoint with the task id and user when the reply is cancelled', async () => {
    fake.script({ chunks: LONG_REPLY, delayMs: 50 });
    await unsubscribeAfterFirstDelta(llm.stream(request('dify-1')));
    await fake.waitForClientClose(1_000);
    await until(() => fake.stopRequests().length > 0, 1_000, 10);
    const [stop] = fake.stopRequests();
    expect(stop).toBeDefined();
    expect(stop.path).toBe(`/v1/chat-messages/${fake.taskIds[0]}/stop`);
    expect(stop.body).toEqual({ user: 'user-1' });
    expect(stop.headers.authorization).toBe(`Bearer ${API_KEY}`);
  });

  it('does not call the stop endpoint after a normal end', async () => {
    fake.script({ chunks: ['done'] });
    await collect(llm.stream(request('dify-1')));
    // A stop would be sent as the reply ends: the next reply from the same server comes after it.
    await collect(llm.stream(request('dify-1')));
    expect(fake.requestsTo('/chat-messages')).toHaveLength(2);
    expect(fake.stopRequests()).toHaveLength(0);
  });

  commonScenarios('dify', () => fake, '/chat-messages');
});

describe('voice through the openai-type STT/TTS providers', () => {
  let fake: FakeOpenAi;
  let llm: LlmService;
  beforeAll(async () => {
    fake = await startFakeOpenAi();
  });
  afterAll(() => fake.close());
  beforeEach(() => {
    fake.reset();
    llm = serviceFor({
      ...providerEnv('openai', `${fake.url}/v1`),
      LLM_PROVIDER_2_ID: 'whisper',
      LLM_PROVIDER_2_TYPE: 'openai',
      LLM_PROVIDER_2_ENDPOINT: `${fake.url}/v1`,
      LLM_PROVIDER_2_API_KEY: API_KEY,
      LLM_PROVIDER_2_MODEL: 'whisper-1',
      LLM_PROVIDER_3_ID: 'speaker',
      LLM_PROVIDER_3_TYPE: 'openai',
      LLM_PROVIDER_3_ENDPOINT: `${fake.url}/v1`,
      LLM_PROVIDER_3_MODEL: 'tts-1',
      STT_PROVIDER_ID: 'whisper',
      TTS_PROVIDER_ID: 'speaker',
      TTS_VOICE: 'nova',
    });
  });

  it('transcribes audio with a multipart upload of the file and the model', async () => {
    fake.transcript = ' hello from a voice note ';
    const audio = Buffer.from('OggS-fake-voice-bytes');
    expect(llm.sttAvailable).toBe(true);
    await expect(llm.transcribe(audio, 'note.ogg', 'audio/ogg')).resolves.toBe('hello from a voice note');
    const [received] = fake.requestsTo('/audio/transcriptions');
    expect(received.path).toBe('/v1/audio/transcriptions');
    expect(received.headers['content-type']).toMatch(/^multipart\/form-data/);
    expect(fake.transcriptions[0]).toMatchObject({
      model: 'whisper-1',
      file: { name: 'note.ogg', type: 'audio/ogg' },
    });
    expect(fake.transcriptions[0].file!.bytes.equals(audio)).toBe(true);
  });

  it('synthesizes speech with the configured voice and returns the audio bytes', async () => {
    expect(llm.ttsAvailable).toBe(true);
    const result = await llm.synthesize('Read this aloud');
    expect(result.mimeType).toBe('audio/mpeg');
    expect(result.audio.equals(fake.speechAudio)).toBe(true);
    const [received] = fake.requestsTo('/audio/speech');
    expect(received.body).toMatchObject({ model: 'tts-1', input: 'Read this aloud', voice: 'nova' });
  });

  it('throws a VoiceUnavailableError when the provider fails', async () => {
    fake.script({ status: 500 });
    const failure = await llm.transcribe(Buffer.from('x'), 'a.webm', 'audio/webm').catch((error) => error);
    expect(isVoiceUnavailableError(failure)).toBe(true);
    expect(failure.code).toBe('TRANSCRIPTION_UNAVAILABLE');
    await expect(llm.synthesize('x')).rejects.toMatchObject({ code: 'TRANSCRIPTION_UNAVAILABLE' });
  });

  it('throws a VoiceUnavailableError when no STT/TTS provider is configured', async () => {
    const plain = serviceFor(providerEnv('openai', `${fake.url}/v1`));
    expect(plain.sttAvailable).toBe(false);
    expect(plain.ttsAvailable).toBe(false);
    await expect(plain.transcribe(Buffer.from('x'), 'a.ogg', 'audio/ogg')).rejects.toMatchObject({
      code: 'TRANSCRIPTION_UNAVAILABLE',
    });
    await expect(plain.synthesize('x')).rejects.toMatchObject({ code: 'TRANSCRIPTION_UNAVAILABLE' });
    expect(fake.requests).toHaveLength(0);
  });
});

describe('LlmModule', () => {
  it('provides LlmService through Nest DI with the injected config', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [AppConfigModule.forRoot(loadConfig({ NODE_ENV: 'test' })), LlmModule],
    }).compile();
    const llm = moduleRef.get(LlmService);
    expect(llm.models()).toEqual([{ id: 'demo', name: 'Demo model' }]);
    expect(llm.defaultModelId).toBe('demo');
    expect(llm.hasModel('demo')).toBe(true);
    await moduleRef.close();
  });

  it('streams the demo model with one estimated usage and one end', async () => {
    const llm = serviceFor({});
    const events = await collect(llm.stream(request('demo')));
    expect(deltas(events).join('')).toContain('demo model');
    expect(events.filter((event) => event.kind === 'usage')).toEqual([
      expect.objectContaining({ estimated: true }),
    ]);
    expect(last(events)).toEqual({ kind: 'end' });
  });

  it('answers an unknown model with an error event', async () => {
    const events = await collect(serviceFor({}).stream(request('nope')));
    expect(events).toEqual([{ kind: 'error', code: 'LLM_ERROR', message: expect.any(String) }]);
  });
});
