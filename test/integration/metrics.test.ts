import {
  ALL_METRIC_NAMES,
  METRIC,
  MetricsService,
  StorageMetrics,
  UNMATCHED_ENDPOINT,
} from '@chatbox/metrics';
import { ConversationStore, SessionRepository } from '@chatbox/storage';
import { MongoClient } from 'mongodb';
import { startTestApp, TestApp, testMongoUri, uniqueDatabaseName } from '../support/app';

const POLL_MS = 20;
const POLL_LIMIT_MS = 2_000;

/** The response reaches the client before the server's `close` event records it: wait a little. */
async function eventually(check: () => Promise<boolean>): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > POLL_LIMIT_MS) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function scrape(t: TestApp, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${t.baseUrl}/metrics/prometheus`, { headers });
}

/** Value of one sample line of the exposition text, e.g. `name_count{a="b"}`. */
function sampleOf(text: string, sample: string, labels: Record<string, string>): number | undefined {
  const line = text
    .split('\n')
    .find(
      (candidate) =>
        candidate.startsWith(`${sample}{`) &&
        Object.entries(labels).every(([key, value]) => candidate.includes(`${key}="${value}"`)),
    );
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('GET {prefix}/metrics/prometheus', () => {
  let t: TestApp;
  let metrics: MetricsService;
  beforeAll(async () => {
    t = await startTestApp();
    metrics = t.app.get(MetricsService);
  });
  afterAll(async () => t?.close());

  it('answers the Prometheus text format with every SPEC 12 metric and the Node process metrics', async () => {
    const response = await scrape(t);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    for (const name of ALL_METRIC_NAMES) expect(text).toContain(`# TYPE ${name} `);
    expect(text).toContain(`# TYPE ${METRIC.websocketConnections} gauge`);
    expect(text).toContain(`# TYPE ${METRIC.activeSessions} gauge`);
    expect(text).toContain(`# TYPE ${METRIC.llmStreamsInFlight} gauge`);
    for (const histogram of [
      METRIC.llmLatency,
      METRIC.mongoOperation,
      METRIC.websocketConnectionDuration,
      METRIC.httpRequestDuration,
      METRIC.humanWait,
    ])
      expect(text).toContain(`# TYPE ${histogram} histogram`);
    expect(text).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(text).toContain('# TYPE nodejs_eventloop_lag_seconds gauge');
  });

  it('times HTTP requests under the route pattern, never the raw URL', async () => {
    const labels = { endpoint: `${t.config.pathPrefix}/healthz`, method: 'GET' };
    const before = await metrics.sampleValue(`${METRIC.httpRequestDuration}_count`, labels);
    expect((await fetch(`${t.baseUrl}/healthz`)).status).toBe(200);
    await eventually(
      async () => (await metrics.sampleValue(`${METRIC.httpRequestDuration}_count`, labels)) === before + 1,
    );
    expect((await fetch(`${t.baseUrl}/no-such-page-4711`)).status).toBe(404);
    await eventually(
      async () =>
        (await metrics.sampleValue(`${METRIC.httpRequestDuration}_count`, { endpoint: UNMATCHED_ENDPOINT })) >
        0,
    );
    const text = await (await scrape(t)).text();
    expect(sampleOf(text, `${METRIC.httpRequestDuration}_count`, labels)).toBeGreaterThanOrEqual(before + 1);
    expect(text).not.toContain('no-such-page-4711');
  });

  it('times every repository call in chatbox_mongodb_operation_seconds{operation}', async () => {
    const labels = { operation: 'findSession' };
    const before = await metrics.sampleValue(`${METRIC.mongoOperation}_count`, labels);
    await t.app.get(SessionRepository).findSummary('no-such-session');
    expect(await metrics.sampleValue(`${METRIC.mongoOperation}_count`, labels)).toBe(before + 1);
    const text = await (await scrape(t)).text();
    expect(sampleOf(text, `${METRIC.mongoOperation}_count`, labels)).toBe(before + 1);
    expect(sampleOf(text, `${METRIC.mongoOperation}_sum`, labels)).toBeGreaterThan(0);
  });

  it('reads chatbox_active_sessions_total from the database', async () => {
    const repository = t.app.get(SessionRepository);
    const store = t.app.get(ConversationStore);
    store.selectModel(store.createSession({ userId: 'metrics-user-1' }), 'demo');
    const ended = store.createSession({ userId: 'metrics-user-2' });
    store.selectModel(ended, 'demo');
    await store.end(ended.id);
    await store.settle();
    await t.app.get(StorageMetrics).resyncActiveSessions();
    expect(await metrics.sampleValue(METRIC.activeSessions)).toBe(await repository.countActive());
    expect(await metrics.sampleValue(METRIC.activeSessions)).toBe(1);
  });

  it('honours X-Forwarded-For from a trusted proxy (127.0.0.1 is one by default)', async () => {
    const outside = await scrape(t, { 'X-Forwarded-For': '203.0.113.9' });
    expect(outside.status).toBe(403);
    expect(await outside.json()).toEqual({
      error: expect.any(String),
      code: 'FORBIDDEN',
      message: expect.any(String),
    });
    expect((await scrape(t, { 'X-Forwarded-For': '10.1.2.3' })).status).toBe(200);
  });
});

describe('active sessions at start', () => {
  let t: TestApp | undefined;
  afterAll(async () => t?.close());

  it('a new instance starts with the count stored in the database', async () => {
    const database = uniqueDatabaseName('metricsstart');
    const client = await MongoClient.connect(testMongoUri());
    const now = new Date();
    // Written with the raw driver, as an earlier run (or another instance) would have left them.
    await client
      .db(database)
      .collection<{ _id: string; uid: string; ts: Date; endTs?: Date }>('sessions')
      .insertMany([
        { _id: 'start-active-1', uid: 'start-user-1', ts: now },
        { _id: 'start-active-2', uid: 'start-user-2', ts: now },
        { _id: 'start-ended', uid: 'start-user-3', ts: now, endTs: now },
      ]);
    await client.close();
    t = await startTestApp({ MONGO_DATABASE: database });
    const metrics = t.app.get(MetricsService);
    await eventually(async () => (await metrics.sampleValue(METRIC.activeSessions)) === 2);
  });
});

describe('METRICS_ALLOWED_NETWORKS and TRUSTED_PROXIES', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('refuses a direct loopback client outside the allowed networks, admits one forwarded by a trusted proxy', async () => {
    t = await startTestApp({ METRICS_ALLOWED_NETWORKS: '10.0.0.0/8' });
    const direct = await scrape(t);
    expect(direct.status).toBe(403);
    expect(((await direct.json()) as { code: string }).code).toBe('FORBIDDEN');
    expect((await scrape(t, { 'X-Forwarded-For': '10.1.2.3' })).status).toBe(200);
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    t = await startTestApp({ METRICS_ALLOWED_NETWORKS: '10.0.0.0/8', TRUSTED_PROXIES: '192.0.2.0/24' });
    expect((await scrape(t, { 'X-Forwarded-For': '10.1.2.3' })).status).toBe(403);
  });

  it('needs no token: the route is public', async () => {
    t = await startTestApp();
    const response = await scrape(t, { Authorization: 'Bearer not-a-token' });
    expect(response.status).toBe(200);
  });
});

describe('metrics move when things happen (chat over the socket)', () => {
  it('after a chat: messages received, LLM requests for demo, open sockets, sessions created, tokens', async () => {
    const { startTestApp } = await import('../support/app');
    const { userToken } = await import('../support/tokens');
    const { TestClient } = await import('../support/ws-client');
    const t = await startTestApp();
    try {
      const client = await TestClient.connect(t.wsUrl, { token: userToken('metered') });
      await client.waitForType('connection_status');
      client.send({ type: 'user_message', content: 'count me' });
      await client.waitForReply();
      client.send({ type: 'bogus' });
      await client.waitForType('error');
      const text = await (await fetch(`${t.baseUrl}/metrics/prometheus`)).text();
      const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 'NaN');
      expect(value(/^chatbox_messages_received_total (\S+)$/m)).toBeGreaterThanOrEqual(2);
      expect(value(/^chatbox_messages_sent_total (\S+)$/m)).toBeGreaterThan(3);
      expect(value(/^chatbox_message_errors_total (\S+)$/m)).toBeGreaterThanOrEqual(1);
      expect(value(/^chatbox_llm_requests_total\{provider="demo"\} (\S+)$/m)).toBe(1);
      expect(value(/^chatbox_tokens_used_total\{provider="demo"\} (\S+)$/m)).toBeGreaterThan(0);
      expect(value(/^chatbox_websocket_connections_total (\S+)$/m)).toBe(1);
      expect(value(/^chatbox_sessions_created_total (\S+)$/m)).toBe(1);
      expect(value(/^chatbox_llm_streams_in_flight (\S+)$/m)).toBe(0);
      await client.close();
      let after = '';
      await eventually(async () => {
        after = await (await fetch(`${t.baseUrl}/metrics/prometheus`)).text();
        return /^chatbox_websocket_connections_total 0$/m.test(after);
      });
      expect(/^chatbox_websocket_connections_total (\S+)$/m.exec(after)?.[1]).toBe('0');
      expect(/^chatbox_websocket_connection_duration_seconds_count (\S+)$/m.exec(after)?.[1]).toBe('1');
    } finally {
      await t.close();
    }
  });
});
