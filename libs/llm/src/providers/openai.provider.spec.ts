import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { firstValueFrom, lastValueFrom, Observable, toArray } from 'rxjs';
import type { LlmProviderConfig } from '@chatbox/common';
import { LlmProviderError } from '../llm-errors';
import type { ReplyEvent } from '../llm.types';
import { OpenAiProvider } from './openai.provider';

type Handler = (request: IncomingMessage, body: string, response: ServerResponse) => void;

const chunk = (content: string) =>
  `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
const usage = `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 2 } })}\n\n`;

/** The provider's request and answers on a real HTTP server (the SDK no longer sends them: issue 12). */
describe('OpenAiProvider', () => {
  let server: Server;
  let base: string;
  let handler: Handler;
  let closed: Promise<void>;

  const provider = (overrides: Partial<LlmProviderConfig> = {}) =>
    new OpenAiProvider(
      { index: 1, id: 'gpt', name: 'GPT', type: 'openai', endpoint: `${base}/v1`, model: 'm1', ...overrides },
      { requestTimeoutMs: 5_000 },
    );
  const ask = (target: OpenAiProvider, system = '') =>
    target.stream(
      { modelId: 'gpt', userId: 'u', sessionId: 's', history: [{ role: 'user', content: 'hi' }] },
      system,
    );
  const failureOf = (events: Observable<ReplyEvent>) =>
    lastValueFrom(events.pipe(toArray())).then(
      () => undefined,
      (error: unknown) => error as LlmProviderError,
    );

  beforeAll(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (text: string) => (body += text));
      request.on('end', () => handler(request, body, response));
      closed = new Promise((resolve) => response.once('close', resolve));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('posts the chat completion request (path, key, JSON body) and streams deltas, usage and the end', async () => {
    let seen: { method?: string; url?: string; auth?: string; type?: string; body?: unknown } = {};
    handler = (request, body, response) => {
      seen = {
        method: request.method,
        url: request.url,
        auth: request.headers.authorization,
        type: request.headers['content-type'],
        body: JSON.parse(body),
      };
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.end(`${chunk('Hel')}${chunk('lo')}${usage}data: [DONE]\n\n`);
    };
    const events = await lastValueFrom(ask(provider({ apiKey: 'k1' }), 'be brief').pipe(toArray()));
    expect(seen).toEqual({
      method: 'POST',
      url: '/v1/chat/completions',
      auth: 'Bearer k1',
      type: 'application/json',
      body: {
        model: 'm1',
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'hi' },
        ],
        stream: true,
        stream_options: { include_usage: true },
      },
    });
    expect(
      events
        .filter((event) => event.kind === 'delta')
        .map((event) => event.text)
        .join(''),
    ).toBe('Hello');
    expect(events.slice(-2)).toEqual([
      { kind: 'usage', promptTokens: 3, completionTokens: 2 },
      { kind: 'end' },
    ]);
  });

  it('maps an error answer like the SDK did: status, its JSON message and Retry-After', async () => {
    handler = (_request, _body, response) =>
      response
        .writeHead(429, { 'content-type': 'application/json', 'retry-after': '7' })
        .end('{"error":{"message":"slow down"}}');
    const failure = await failureOf(ask(provider()));
    expect(failure).toBeInstanceOf(LlmProviderError);
    expect(failure).toMatchObject({ kind: 'http', status: 429, retryAfterMs: 7_000 });
    expect(failure?.message).toContain('slow down');
  });

  it('keeps a text error body as the message', async () => {
    handler = (_request, _body, response) => response.writeHead(502).end('bad gateway upstream');
    const failure = await failureOf(ask(provider()));
    expect(failure).toMatchObject({ kind: 'http', status: 502 });
    expect(failure?.message).toContain('bad gateway upstream');
  });

  it('a provider that cannot be reached is a connection failure', async () => {
    const unused = createServer();
    await new Promise<void>((resolve) => unused.listen(0, '127.0.0.1', resolve));
    const port = (unused.address() as AddressInfo).port;
    await new Promise((resolve) => unused.close(resolve));
    const failure = await failureOf(ask(provider({ endpoint: `http://127.0.0.1:${port}/v1` })));
    expect(failure).toMatchObject({ kind: 'connection' });
  });

  it('a body cut before its end is a connection failure', async () => {
    handler = (_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(chunk('partial'), () => response.socket?.destroy());
    };
    const failure = await failureOf(ask(provider()));
    expect(failure).toMatchObject({ kind: 'connection' });
  });

  it('leaving the reply mid-body closes the request upstream', async () => {
    handler = (_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(chunk('first'));
    };
    await expect(firstValueFrom(ask(provider()))).resolves.toEqual({ kind: 'delta', text: 'first' });
    await closed;
  });
});
