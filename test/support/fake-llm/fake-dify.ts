import { randomUUID } from 'node:crypto';
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

export interface FakeDify extends FakeLlmServer {
  /** Task ids the fake handed out, in order. */
  taskIds: string[];
  /** Requests to `POST …/chat-messages/{task_id}/stop`. */
  stopRequests(): RecordedRequest[];
  /**
   * Files served at `GET /files/tools/<name>` (what Dify's `message_file` URLs point at), keyed by
   * the request path; unknown paths answer 404. Kept across `reset()`.
   */
  servedFiles: Map<string, { bytes: Buffer; type: string }>;
}

async function chatMessages(
  fake: FakeDify,
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
        code: script.status === 401 ? 'unauthorized' : 'internal_server_error',
        message: `fake error ${script.status}`,
        status: script.status,
      },
      script.retryAfter,
    );
  startSse(res);
  const taskId = randomUUID();
  fake.taskIds.push(taskId);
  const messageId = randomUUID();
  const conversationId = script.conversationId ?? (request.body?.conversation_id || randomUUID());
  const base = {
    task_id: taskId,
    message_id: messageId,
    conversation_id: conversationId,
    created_at: Math.floor(Date.now() / 1000),
  };
  const send = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
  const chunks = chunksOf(script);
  send({ event: 'ping' });
  for (let index = 0; index < chunks.length; index++) {
    if (script.cutAfter !== undefined && index >= script.cutAfter) return cut();
    await sleep(script.delayMs ?? 0);
    if (gone()) return;
    send({ ...base, event: 'message', id: messageId, answer: chunks[index] });
  }
  if (script.cutAfter !== undefined) return cut();
  if (script.errorEvent) {
    send({
      ...base,
      event: 'error',
      status: 400,
      code: script.errorEvent.code ?? 'invalid_param',
      message: script.errorEvent.message,
    });
    res.end();
    return;
  }
  for (const file of script.files ?? [])
    send({
      ...base,
      event: 'message_file',
      id: randomUUID(),
      type: file.type ?? 'image',
      belongs_to: 'assistant',
      url: file.url,
    });
  if (script.omitEnd) return void res.end();
  await sleep(script.delayMs ?? 0);
  if (gone()) return;
  const usage = usageOf(script);
  send({
    ...base,
    event: 'message_end',
    id: messageId,
    metadata: usage
      ? { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens, currency: 'USD' } }
      : {},
  });
  res.end();
}

/**
 * Fake Dify chat app API: `POST …/chat-messages` streaming `data: {"event":"message",…}` events
 * (each with `task_id`), `message_file`, `message_end` (conversation id, `metadata.usage`), `error`,
 * `ping`; `POST …/chat-messages/{task_id}/stop` answering `{"result":"success"}`; and
 * `GET /files/tools/<name>` serving `servedFiles`.
 */
export async function startFakeDify(): Promise<FakeDify> {
  const server = new FakeLlmServer(
    {
      '/chat-messages/*/stop': (_request, _script, res) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"result":"success"}');
      },
      '/chat-messages': (request, script, res, helpers) => chatMessages(fake, request, script, res, helpers),
      '/files/tools/*': (request, _script, res) => {
        const file = fake.servedFiles.get(request.path);
        if (!file) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
        res
          .writeHead(200, { 'content-type': file.type, 'content-length': file.bytes.length })
          .end(file.bytes);
      },
    },
    ['/chat-messages/*/stop', '/files/tools/*'],
  );
  const fake: FakeDify = Object.assign(server, {
    taskIds: [] as string[],
    servedFiles: new Map<string, { bytes: Buffer; type: string }>(),
    stopRequests: () =>
      server.requests.filter((request) => /\/chat-messages\/[^/]+\/stop$/.test(request.path)),
  });
  fake.onReset(() => (fake.taskIds.length = 0));
  return fake.listen();
}
