// Benchmark: concurrent chats against the built service on the embedded database.
// Prints figures (never asserts). Usage: make bench  [CLIENTS=50 MESSAGES=3]
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');
const jwt = require('jsonwebtoken');

const CLIENTS = Number(process.env.CLIENTS ?? 50);
const MESSAGES = Number(process.env.MESSAGES ?? 3);
const CHUNKS = Number(process.env.CHUNKS ?? 40);
const SECRET = 'bench-only-secret-value-0123456789abcdef';

// A local OpenAI-compatible server that streams CHUNKS deltas as fast as the client reads.
const llm = createServer((request, response) => {
  request.resume();
  request.on('end', () => {
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    for (let i = 0; i < CHUNKS; i++)
      response.write(
        `data: ${JSON.stringify({ id: 'b', object: 'chat.completion.chunk', created: 0, model: 'bench', choices: [{ index: 0, delta: { content: `w${i} ` }, finish_reason: null }] })}\n\n`,
      );
    response.write(
      `data: ${JSON.stringify({ id: 'b', object: 'chat.completion.chunk', created: 0, model: 'bench', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`,
    );
    response.write(
      `data: ${JSON.stringify({ id: 'b', object: 'chat.completion.chunk', created: 0, model: 'bench', choices: [], usage: { prompt_tokens: 10, completion_tokens: CHUNKS } })}\n\n`,
    );
    response.end('data: [DONE]\n\n');
  });
});
await new Promise((r) => llm.listen(0, '127.0.0.1', r));

const dataDir = mkdtempSync(join(tmpdir(), 'chatbox-bench-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const service = spawn(process.execPath, ['dist/apps/chatbox/src/main.js'], {
  env: {
    ...process.env,
    NODE_ENV: 'development',
    LOG_LEVEL: 'error',
    PORT: String(port),
    DATA_DIR: dataDir,
    JWT_SECRET: SECRET,
    RATE_LIMIT: '100000',
    MAX_CONNECTIONS_PER_USER: '100000',
    LLM_PROVIDER_1_ID: 'bench',
    LLM_PROVIDER_1_TYPE: 'openai',
    LLM_PROVIDER_1_ENDPOINT: `http://127.0.0.1:${llm.address().port}`,
    LLM_PROVIDER_1_MODEL: 'bench',
    MONGO_URI: '',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let banner = '';
await new Promise((resolve, reject) => {
  service.stdout.on('data', (chunk) => {
    banner += chunk;
    if (banner.includes('admin-page?token=')) resolve();
  });
  service.once('exit', () => reject(new Error('service exited')));
});

const rss = async () => {
  const text = await (await fetch(`http://127.0.0.1:${port}/chatbox/metrics/prometheus`)).text();
  return Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)?.[1] ?? 0) / 1024 / 1024;
};
const rssBefore = await rss();

async function chat(index) {
  const token = jwt.sign({ user_id: `bench-${index}`, roles: [] }, SECRET);
  const socket = new WebSocket(`ws://127.0.0.1:${port}/chatbox/ws?token=${token}`);
  await new Promise((r, j) => {
    socket.once('open', r);
    socket.once('error', j);
  });
  const latencies = [];
  let frames = 0;
  for (let m = 0; m < MESSAGES; m++) {
    const sent = performance.now();
    let first;
    await new Promise((resolve) => {
      const onMessage = (data) => {
        const frame = JSON.parse(data);
        if (frame.type !== 'ai_response') return;
        frames++;
        first ??= performance.now() - sent;
        if (frame.metadata?.done === 'true') {
          socket.off('message', onMessage);
          resolve();
        }
      };
      socket.on('message', onMessage);
      socket.send(JSON.stringify({ type: 'user_message', content: `question ${m}` }));
    });
    latencies.push({ first, total: performance.now() - sent });
  }
  socket.close();
  return { latencies, frames };
}

const started = performance.now();
const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => chat(i)));
const seconds = (performance.now() - started) / 1000;
const rssAfter = await rss();
const all = results.flatMap((r) => r.latencies);
const pct = (values, p) =>
  values.sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))];
const frames = results.reduce((sum, r) => sum + r.frames, 0);
console.log(`clients ${CLIENTS}, messages each ${MESSAGES}, deltas per reply ${CHUNKS}`);
console.log(
  `replies ${all.length} in ${seconds.toFixed(2)} s = ${(all.length / seconds).toFixed(1)} replies/s, ${(frames / seconds).toFixed(0)} frames/s`,
);
console.log(
  `first token ms p50 ${pct(
    all.map((l) => l.first),
    50,
  ).toFixed(1)} p95 ${pct(
    all.map((l) => l.first),
    95,
  ).toFixed(1)}`,
);
console.log(
  `whole reply ms p50 ${pct(
    all.map((l) => l.total),
    50,
  ).toFixed(1)} p95 ${pct(
    all.map((l) => l.total),
    95,
  ).toFixed(1)}`,
);
console.log(`service RSS MB before ${rssBefore.toFixed(1)} after ${rssAfter.toFixed(1)}`);

service.kill('SIGTERM');
await new Promise((r) => service.once('exit', r));
llm.close();
rmSync(dataDir, { recursive: true, force: true });
