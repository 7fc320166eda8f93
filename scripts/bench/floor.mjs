// The floor of `make bench`: a minimal raw `ws` server with a JWT check that forwards the same
// provider's SSE stream, no database. What a user would get from a bare WebSocket proxy.
import { createServer } from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { WebSocketServer } = require('ws');
const jwt = require('jsonwebtoken');
const { createParser } = require('eventsource-parser');

const { PORT, JWT_SECRET, PROVIDER_URL } = process.env;
const server = createServer((request, response) => response.writeHead(404).end());
const sockets = new WebSocketServer({ noServer: true });

server.on('upgrade', (request, socket, head) => {
  const token = new URL(request.url, 'http://floor').searchParams.get('token');
  try {
    jwt.verify(token, JWT_SECRET, { algorithms: ['HS256'] });
  } catch {
    socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
    return;
  }
  sockets.handleUpgrade(request, socket, head, (ws) => {
    ws.send(JSON.stringify({ type: 'connection_status', sender: 'system' }));
    ws.on('message', (data) => void answer(ws, JSON.parse(String(data))));
  });
});

async function answer(ws, frame) {
  if (frame.type !== 'user_message') return;
  const response = await fetch(`${PROVIDER_URL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'bench',
      stream: true,
      messages: [{ role: 'user', content: frame.content }],
    }),
  });
  let seq = 0;
  const parser = createParser({
    onEvent: (event) => {
      if (event.data === '[DONE]') return;
      const content = JSON.parse(event.data).choices?.[0]?.delta?.content;
      if (content)
        ws.send(
          JSON.stringify({ type: 'ai_response', content, metadata: { done: 'false', seq: String(seq++) } }),
        );
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of response.body) parser.feed(decoder.decode(chunk, { stream: true }));
  ws.send(JSON.stringify({ type: 'ai_response', metadata: { done: 'true', seq: String(seq) } }));
}

server.listen(Number(PORT), '127.0.0.1', () => process.stdout.write('floor ready\n'));
