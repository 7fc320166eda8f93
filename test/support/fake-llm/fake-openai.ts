import type { ServerResponse } from 'node:http';
import {
  chunksOf,
  FakeHelpers,
  FakeLlmServer,
  FakeScript,
  RecordedRequest,
  sendError,
  startSse,
  usageOf,
} from './fake-server';

export interface FakeOpenAi extends FakeLlmServer {
  /** Text returned by `/audio/transcriptions`. */
  transcript: string;
  /** `/audio/transcriptions` answers once this settles (a test holds a transcription with it). */
  transcriptionGate: Promise<void>;
  /** Bytes returned by `/audio/speech` (Content-Type audio/mpeg). */
  speechAudio: Buffer;
  /** Multipart fields of the transcription requests (file as {name, type, size, bytes}). */
  transcriptions: Array<{
    model?: string;
    file?: { name: string; type: string; size: number; bytes: Buffer };
  }>;
}

const MODEL = 'fake-model';

function openAiErrorBody(status: number): unknown {
  const type =
    status === 401 ? 'invalid_request_error' : status === 429 ? 'rate_limit_exceeded' : 'server_error';
  return { error: { message: `fake error ${status}`, type, param: null, code: null } };
}

async function chatCompletions(
  request: RecordedRequest,
  script: FakeScript,
  res: ServerResponse,
  { sleep, gone, cut }: FakeHelpers,
): Promise<void> {
  if (script.status) return sendError(res, script.status, openAiErrorBody(script.status), script.retryAfter);
  startSse(res);
  const id = `chatcmpl-${Date.now()}`;
  const base = { id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: MODEL };
  const send = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
  const chunks = chunksOf(script);
  for (let index = 0; index < chunks.length; index++) {
    if (script.cutAfter !== undefined && index >= script.cutAfter) return cut();
    await sleep(script.delayMs ?? 0);
    if (gone()) return;
    const delta = index === 0 ? { role: 'assistant', content: chunks[index] } : { content: chunks[index] };
    send({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: null }] });
  }
  if (script.cutAfter !== undefined) return cut();
  if (script.errorEvent) {
    // What OpenAI-compatible servers (vLLM, LiteLLM, OpenAI itself) send when generation fails mid-stream.
    const { message, type = 'server_error', code = null } = script.errorEvent;
    send({ error: { message, type, param: null, code } });
    return void res.end();
  }
  for (const data of script.rawData ?? []) res.write(`data: ${data}\n\n`);
  if (script.omitEnd) return void res.end();
  await sleep(script.delayMs ?? 0);
  if (gone()) return;
  send({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] });
  const usage = usageOf(script);
  if (usage && request.body?.stream_options?.include_usage)
    send({
      ...base,
      choices: [],
      usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
    });
  res.end('data: [DONE]\n\n');
}

/**
 * Fake OpenAI-compatible server: `POST …/chat/completions` (SSE chunks with
 * `choices[0].delta.content`, a usage chunk when asked, `data: [DONE]`), `POST …/audio/transcriptions`
 * (multipart → `{text}`) and `POST …/audio/speech` (→ audio/mpeg bytes).
 * Use the `url` (optionally + `/v1`) as the provider endpoint.
 */
export async function startFakeOpenAi(): Promise<FakeOpenAi> {
  const server = new FakeLlmServer({
    '/chat/completions': chatCompletions,
    '/audio/transcriptions': async (request, script, res) => {
      if (script.status)
        return sendError(res, script.status, openAiErrorBody(script.status), script.retryAfter);
      const form = await new Response(new Uint8Array(request.rawBody), {
        headers: { 'content-type': String(request.headers['content-type']) },
      }).formData();
      const file = form.get('file');
      const entry: FakeOpenAi['transcriptions'][number] = { model: form.get('model')?.toString() };
      if (file && typeof file !== 'string')
        entry.file = {
          name: (file as File).name,
          type: file.type,
          size: file.size,
          bytes: Buffer.from(await file.arrayBuffer()),
        };
      fake.transcriptions.push(entry);
      await fake.transcriptionGate;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ text: fake.transcript }));
    },
    '/audio/speech': (_request, script, res) => {
      if (script.status)
        return sendError(res, script.status, openAiErrorBody(script.status), script.retryAfter);
      res.writeHead(200, { 'content-type': 'audio/mpeg' }).end(fake.speechAudio);
    },
  });
  const fake: FakeOpenAi = Object.assign(server, {
    transcript: 'fake transcription',
    transcriptionGate: Promise.resolve(),
    speechAudio: Buffer.from('ID3fake-mpeg-audio-bytes'),
    transcriptions: [],
  });
  fake.onReset(() => {
    fake.transcriptions.length = 0;
    fake.transcriptionGate = Promise.resolve();
  });
  await fake.listen();
  return fake;
}

export interface OpenAiProviderOptions {
  /** The `n` of `LLM_PROVIDER_<n>_*`. */
  n?: number;
  id?: string;
  name?: string;
  model?: string;
  apiKey?: string;
  endpoint?: string;
}

/** The settings of an app whose provider `n` is `fake` (type `openai`); name and key only when given. */
export function openAiProviderEnv(
  fake: { url: string },
  { n = 1, id = 'fake', name, model = 'fake-model', apiKey, endpoint = fake.url }: OpenAiProviderOptions = {},
): Record<string, string> {
  const prefix = `LLM_PROVIDER_${n}_`;
  return {
    [`${prefix}ID`]: id,
    [`${prefix}TYPE`]: 'openai',
    [`${prefix}ENDPOINT`]: endpoint,
    [`${prefix}MODEL`]: model,
    ...(name === undefined ? {} : { [`${prefix}NAME`]: name }),
    ...(apiKey === undefined ? {} : { [`${prefix}API_KEY`]: apiKey }),
  };
}

/** The provider most tests configure: `fake`, shown as "Fake GPT". */
export const FAKE_GPT: OpenAiProviderOptions = { id: 'fake', name: 'Fake GPT', apiKey: 'test-key' };
