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

export type FakeAnthropic = FakeLlmServer;

function anthropicErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 529) return 'overloaded_error';
  if (status >= 500) return 'api_error';
  return 'invalid_request_error';
}

async function messages(
  request: RecordedRequest,
  script: FakeScript,
  res: ServerResponse,
  { sleep, gone, cut }: FakeHelpers,
): Promise<void> {
  if (script.status)
    return sendError(
      res,
      script.status,
      {
        type: 'error',
        error: { type: anthropicErrorType(script.status), message: `fake error ${script.status}` },
      },
      script.retryAfter,
    );
  startSse(res);
  const send = (event: string, data: unknown) =>
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const usage = usageOf(script);
  send('message_start', {
    type: 'message_start',
    message: {
      id: `msg_${Date.now()}`,
      type: 'message',
      role: 'assistant',
      model: request.body?.model ?? 'fake-model',
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: usage ? { input_tokens: usage.prompt_tokens, output_tokens: 1 } : {},
    },
  });
  send('content_block_start', {
    type: 'content_block_start',
    index: 0,
    content_block: { type: 'text', text: '' },
  });
  send('ping', { type: 'ping' });
  const chunks = chunksOf(script);
  for (let index = 0; index < chunks.length; index++) {
    if (script.cutAfter !== undefined && index >= script.cutAfter) return cut();
    await sleep(script.delayMs ?? 0);
    if (gone()) return;
    send('content_block_delta', {
      type: 'content_block_delta',
      index: 0,
      delta: { type: 'text_delta', text: chunks[index] },
    });
  }
  if (script.cutAfter !== undefined) return cut();
  if (script.errorEvent) {
    send('error', {
      type: 'error',
      error: { type: script.errorEvent.type ?? 'overloaded_error', message: script.errorEvent.message },
    });
    res.end();
    return;
  }
  await sleep(script.delayMs ?? 0);
  if (gone()) return;
  send('content_block_stop', { type: 'content_block_stop', index: 0 });
  send('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: 'end_turn', stop_sequence: null },
    usage: usage ? { output_tokens: usage.completion_tokens } : {},
  });
  if (script.omitEnd) return void res.end();
  send('message_stop', { type: 'message_stop' });
  res.end();
}

/**
 * Fake Anthropic Messages API: `POST …/messages` streaming `message_start` (input tokens),
 * `content_block_start`, `ping`, `content_block_delta`…, `content_block_stop`, `message_delta`
 * (output tokens), `message_stop`; or an `error` event (`script.errorEvent`).
 * Use `url` or `url + '/v1'` as the provider endpoint.
 */
export async function startFakeAnthropic(): Promise<FakeAnthropic> {
  return new FakeLlmServer({ '/messages': messages }).listen();
}
