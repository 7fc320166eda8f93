// CPU per streamed chunk of the built OpenAiProvider (issue 12): a local OpenAI-compatible SSE server
// in a child process (so its CPU is not counted) answers STREAMS concurrent chat completions of CHUNKS
// content chunks each (then finish_reason, usage, [DONE]); this process consumes them through
// `OpenAiProvider.stream` and reports its own CPU time (process.cpuUsage: user + system) per content
// chunk, for each of ROUNDS rounds after WARMUP rounds, and their median.
// PATHS lists what to measure, comma-separated, alternating round by round in this one process (a
// far steadier comparison than separate runs): `provider` (the build at PROVIDER_MODULE), `fetch`
// (the same bodies through a bare fetch, nothing parsed: the floor undici alone costs) or the path
// of another build's openai.provider.js (e.g. a copy of main's dist, for an A/B).
//   npm run build && node scripts/bench/provider-parse.mjs
//   STREAMS=200 CHUNKS=50 CHUNK_DELAY_MS=1 ROUNDS=10 WARMUP=2 PATHS=provider,fetch
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { setImmediate } from 'node:timers';

const STREAMS = Number(process.env.STREAMS ?? 200);
const CHUNKS = Number(process.env.CHUNKS ?? 50);
/** 0 = no pause (each chunk still its own write, one event-loop turn apart). */
const CHUNK_DELAY_MS = Number(process.env.CHUNK_DELAY_MS ?? 1);
const ROUNDS = Number(process.env.ROUNDS ?? 10);
const WARMUP = Number(process.env.WARMUP ?? 2);
const PATHS = (process.env.PATHS ?? 'provider').split(',');
const PROVIDER_MODULE = resolve(
  process.env.PROVIDER_MODULE ??
    resolve(import.meta.dirname, '../../dist/libs/llm/src/providers/openai.provider.js'),
);

const pause = (ms) => new Promise((done) => (ms > 0 ? setTimeout(done, ms) : setImmediate(done)));

/** The fake upstream: chunks shaped like OpenAI's, written one by one. */
function serve() {
  const base = { id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 0, model: 'bench' };
  const event = (data) => `data: ${JSON.stringify(data)}\n\n`;
  const chunk = (index) =>
    event({
      ...base,
      choices: [
        {
          index: 0,
          delta: index === 0 ? { role: 'assistant', content: 'word0 ' } : { content: `word${index} ` },
          logprobs: null,
          finish_reason: null,
        },
      ],
    });
  const finish = event({
    ...base,
    choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }],
  });
  const usage = event({
    ...base,
    choices: [],
    usage: { prompt_tokens: 10, completion_tokens: CHUNKS, total_tokens: 10 + CHUNKS },
  });
  const server = createServer(async (request, response) => {
    await request.toArray(); // the request body is not needed
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
    });
    response.flushHeaders();
    for (let index = 0; index < CHUNKS; index++) {
      await pause(CHUNK_DELAY_MS);
      response.write(chunk(index));
    }
    await pause(CHUNK_DELAY_MS);
    response.write(finish);
    response.write(usage);
    response.end('data: [DONE]\n\n');
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
}

/**
 * One stream through the provider; resolves with the number of chunks its deltas carried once it
 * ended (a delta may join the chunks of one read: each chunk's text is one `word<n> `).
 */
function throughProvider(provider) {
  return new Promise((done, fail) => {
    let deltas = 0;
    let ended = false;
    provider
      .stream(
        { modelId: 'bench', userId: 'u', sessionId: 's', history: [{ role: 'user', content: 'hi' }] },
        '',
      )
      .subscribe({
        next: (event) => {
          if (event.kind === 'delta') deltas += event.text.match(/word\d+ /g)?.length ?? 0;
          if (event.kind === 'end') ended = true;
        },
        error: fail,
        complete: () => (ended ? done(deltas) : fail(new Error('completed without end'))),
      });
  });
}

/** The floor: the same request and body bytes with a bare fetch, nothing parsed. */
async function throughFetch(endpoint) {
  const response = await fetch(`${endpoint}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'bench', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const reader = response.body.getReader();
  while (!(await reader.read()).done);
  return CHUNKS;
}

/** What one path name stands for: a function running one stream, resolving with its chunk count. */
function pathRunner(name, endpoint, require) {
  if (name === 'fetch') return { name, module: '-', one: () => throughFetch(endpoint) };
  const module = resolve(name === 'provider' ? PROVIDER_MODULE : name);
  const { OpenAiProvider } = require(module);
  const provider = new OpenAiProvider(
    { index: 1, id: 'bench', name: 'bench', type: 'openai', endpoint, model: 'bench' },
    { requestTimeoutMs: 60_000 },
  );
  return { name, module, one: () => throughProvider(provider) };
}

/** One round: STREAMS concurrent streams; the CPU this process used per content chunk. */
async function round(one) {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const counts = await Promise.all(Array.from({ length: STREAMS }, one));
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const chunks = counts.reduce((sum, count) => sum + count, 0);
  if (chunks !== STREAMS * CHUNKS) throw new Error(`received ${chunks} chunks, expected ${STREAMS * CHUNKS}`);
  return { perChunk: (used.user + used.system) / chunks, user: used.user / chunks, wallMs };
}

async function measure() {
  const server = fork(import.meta.filename, ['--server'], { stdio: 'inherit' });
  const port = await new Promise((done) => server.once('message', (message) => done(message.port)));
  const endpoint = `http://127.0.0.1:${port}/v1`;
  const require = createRequire(import.meta.url);
  const paths = PATHS.map((name) => pathRunner(name, endpoint, require));
  console.log(`${STREAMS} streams x ${CHUNKS} chunks, ${CHUNK_DELAY_MS} ms apart; node ${process.version}`);
  paths.forEach((path, index) => console.log(`  [${index}] ${path.name}: ${path.module}`));
  const figures = paths.map(() => []);
  for (let number = 0; number < WARMUP + ROUNDS; number++) {
    const warm = number < WARMUP;
    const line = [];
    // Alternate the order too, so that neither path always runs right after the other.
    const order = paths.map((_, index) => index);
    if (number % 2 === 1) order.reverse();
    for (const index of order) {
      const result = await round(paths[index].one);
      if (!warm) figures[index].push(result.perChunk);
      line[index] =
        `[${index}] ${result.perChunk.toFixed(1)} µs/chunk ` +
        `(user ${result.user.toFixed(1)}), wall ${result.wallMs.toFixed(0)} ms`;
    }
    console.log(`${warm ? 'warm-up ' : `round ${number - WARMUP + 1}`}: ${line.join('; ')}`);
  }
  const medians = figures.map((values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]);
  paths.forEach((path, index) =>
    console.log(
      `median [${index}] ${path.name}: ${medians[index].toFixed(1)} µs CPU/chunk` +
        (index > 0 ? ` (${((medians[index] / medians[0] - 1) * 100).toFixed(1)} % vs [0])` : ''),
    ),
  );
  server.kill();
}

if (process.argv[2] === '--server') serve();
else await measure();
