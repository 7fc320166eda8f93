import { rmSync } from 'node:fs';
import { EmbeddedDatabase } from '@chatbox/storage';
import { startTestApp, TestApp } from '../support/app';
import { databaseTempDir, embeddedDatabase } from '../support/embedded-database';

async function waitForStatus(url: string, status: number, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const response = await fetch(url).catch(() => undefined);
    if (response?.status === status) return Date.now() - started;
    if (Date.now() - started > timeoutMs)
      throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('health endpoints', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => t?.close());

  it('GET {prefix}/healthz answers 200 {status:"healthy", timestamp}', async () => {
    const response = await fetch(`${t.baseUrl}/healthz`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as any;
    expect(body).toEqual({ status: 'healthy', timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/) });
  });

  it('GET {prefix}/readyz answers 200 with the checks of SPEC 5', async () => {
    const response = await fetch(`${t.baseUrl}/readyz`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as any;
    expect(body).toMatchObject({
      status: 'ready',
      timestamp: expect.any(String),
      checks: { mongodb: { status: 'ready' }, llm: { status: 'ready' } },
    });
    expect(body.checks).not.toHaveProperty('redis');
  });

  it('echoes a correlation id, or makes one', async () => {
    const echoed = await fetch(`${t.baseUrl}/healthz`, { headers: { 'X-Request-Id': 'trace-42' } });
    expect(echoed.headers.get('x-request-id')).toBe('trace-42');
    const made = await fetch(`${t.baseUrl}/healthz`);
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('is not served outside the prefix', async () => {
    const response = await fetch(t.baseUrl.replace('/chatbox', '') + '/healthz');
    expect(response.status).toBe(404);
  });
});

describe('readiness follows the database', () => {
  let database: EmbeddedDatabase;
  let dataDir: string;
  let t: TestApp;

  beforeAll(async () => {
    dataDir = databaseTempDir('chatbox-outage-');
    database = embeddedDatabase(dataDir);
    const uri = await database.start();
    t = await startTestApp({ MONGO_URI: uri });
  });
  afterAll(async () => {
    await t?.close().catch(() => undefined);
    await database?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers 503 within 5 s of FerretDB dying and 200 again once it is back', async () => {
    await waitForStatus(`${t.baseUrl}/readyz`, 200, 5_000);
    database.killForTest('SIGKILL');
    const downAfter = await waitForStatus(`${t.baseUrl}/readyz`, 503, 5_000);
    expect(downAfter).toBeLessThan(5_000);
    const body = (await (await fetch(`${t.baseUrl}/readyz`)).json()) as any;
    expect(body).toMatchObject({ status: 'not ready', checks: { mongodb: { status: 'not ready' } } });
    await database.start();
    await waitForStatus(`${t.baseUrl}/readyz`, 200, 20_000);
  });
});

describe('readiness with Redis configured', () => {
  let t: TestApp;
  afterEach(async () => t?.close());

  it('reports redis ready when the server answers', async () => {
    t = await startTestApp({ REDIS_URL: 'redis://127.0.0.1:6379' });
    const body = (await (await fetch(`${t.baseUrl}/readyz`)).json()) as any;
    expect(body.checks.redis).toMatchObject({ status: 'ready' });
  });

  it('stays ready with Redis unreachable and shows it degraded (issue 14: ready means "can serve")', async () => {
    t = await startTestApp({ REDIS_URL: 'redis://127.0.0.1:1' });
    const response = await fetch(`${t.baseUrl}/readyz`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as any;
    expect(body.status).toBe('ready');
    expect(body.checks.redis).toMatchObject({ status: 'degraded', error: expect.any(String) });
  });
});
