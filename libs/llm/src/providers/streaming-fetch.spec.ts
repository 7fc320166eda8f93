import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { Agent } from 'undici';
import { readSseEvents } from './provider-stream';
import { nodeBodyOf, streamingFetch } from './streaming-fetch';

type Handler = (request: IncomingMessage, body: string, response: ServerResponse) => void;

/** Answers with an event stream holding one event, then keeps it open. */
const openStreamWith =
  (data: string): Handler =>
  (_request, _body, response) => {
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    response.write(`data: ${data}\n\n`);
  };

/** A real HTTP server answering each request with the handler set for the test. */
describe('streamingFetch', () => {
  let server: Server;
  let base: string;
  let handler: Handler;
  let closed: Promise<void>;
  const agent = new Agent();
  const fetchVia = streamingFetch(agent);

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
    await agent.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends method, headers and body; hands a successful body over as a Node stream, read event by event', async () => {
    let seen: { method?: string; auth?: string; body?: string } = {};
    handler = (request, body, response) => {
      seen = { method: request.method, auth: request.headers.authorization, body };
      response.writeHead(200, { 'content-type': 'text/event-stream', 'x-request-id': 'r1' });
      response.write('data: {"n":1}\n\n');
      response.end('data: {"n":2}\n\ndata: [DONE]\n\n');
    };
    const response = await fetchVia(`${base}/chat/completions`, {
      method: 'POST',
      headers: new Headers({ authorization: 'Bearer k', 'content-type': 'application/json' }),
      body: '{"stream":true}',
      signal: new AbortController().signal,
    });
    expect(seen).toEqual({ method: 'POST', auth: 'Bearer k', body: '{"stream":true}' });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('r1');
    const body = nodeBodyOf(response);
    expect(body).toBeInstanceOf(Readable);
    const data: string[] = [];
    const read = await readSseEvents(body!, new AbortController().signal, (message) => {
      data.push(message.data);
    });
    expect(read).toBe(true);
    expect(data).toEqual(['{"n":1}', '{"n":2}', '[DONE]']);
  });

  it('still gives the successful body to whoever reads it the WHATWG way', async () => {
    handler = (_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"a":');
      response.end('1}');
    };
    const response = await fetchVia(`${base}/x`, { method: 'POST', body: '{}' });
    await expect(response.json()).resolves.toEqual({ a: 1 });
  });

  it('reads an error body in full, with its status and headers (what the SDK maps to its APIError)', async () => {
    handler = (_request, _body, response) => {
      response
        .writeHead(429, { 'content-type': 'application/json', 'retry-after': '7' })
        .end('{"error":{"message":"slow down"}}');
    };
    const response = await fetchVia(`${base}/x`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(429);
    expect(response.ok).toBe(false);
    expect(response.headers.get('retry-after')).toBe('7');
    expect(nodeBodyOf(response)).toBeUndefined();
    await expect(response.json()).resolves.toEqual({ error: { message: 'slow down' } });
  });

  it('answers a status without a body with a null body', async () => {
    handler = (_request, _body, response) => response.writeHead(204).end();
    const response = await fetchVia(`${base}/x`, { method: 'DELETE' });
    expect(response.status).toBe(204);
    expect(response.body).toBeNull();
  });

  it('aborting the signal mid-body ends the read as cancelled and closes the request upstream', async () => {
    handler = openStreamWith('first');
    const controller = new AbortController();
    const response = await fetchVia(`${base}/x`, { method: 'POST', body: '{}', signal: controller.signal });
    const read = readSseEvents(nodeBodyOf(response)!, controller.signal, () => controller.abort());
    await expect(read).resolves.toBe(false);
    await closed;
  });

  it('a body nobody reads, aborted, closes the request upstream without an unhandled error', async () => {
    handler = openStreamWith('unread');
    const controller = new AbortController();
    const response = await fetchVia(`${base}/x`, { method: 'POST', body: '{}', signal: controller.signal });
    controller.abort();
    await closed;
    // The abort error is reported a turn later (undici): it must find a listener.
    await new Promise((resolve) => setImmediate(resolve));
    expect(nodeBodyOf(response)?.destroyed).toBe(true);
  });

  it('a handler that stops the read early cancels the body, which closes the request upstream', async () => {
    handler = openStreamWith('enough');
    const response = await fetchVia(`${base}/x`, { method: 'POST', body: '{}' });
    const read = readSseEvents(nodeBodyOf(response)!, new AbortController().signal, () => true);
    await expect(read).resolves.toBe(true);
    await closed;
  });

  it('a body cut before its end is a connection failure', async () => {
    handler = (_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: partial\n\n', () => response.socket?.destroy());
    };
    const response = await fetchVia(`${base}/x`, { method: 'POST', body: '{}' });
    await expect(
      readSseEvents(nodeBodyOf(response)!, new AbortController().signal, () => undefined),
    ).rejects.toMatchObject({ kind: 'connection' });
  });

  it('leaves a request whose body is not text (a multipart upload) to the global fetch', async () => {
    let contentType: string | undefined;
    handler = (request, _body, response) => {
      contentType = request.headers['content-type'];
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"text":"ok"}');
    };
    const form = new FormData();
    form.set('file', new Blob(['abc'], { type: 'audio/webm' }), 'voice.webm');
    const response = await fetchVia(`${base}/audio/transcriptions`, { method: 'POST', body: form });
    expect(contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(nodeBodyOf(response)).toBeUndefined();
    await expect(response.json()).resolves.toEqual({ text: 'ok' });
  });
});
