import type { Request } from 'express';
import { endpointOf } from './http-metrics.middleware';
import { ALL_METRIC_NAMES, METRIC, UNMATCHED_ENDPOINT } from './metric-names';
import { MetricsService } from './metrics.service';

describe('MetricsService', () => {
  let metrics: MetricsService;
  beforeEach(() => {
    metrics = new MetricsService();
  });
  afterEach(() => metrics.onModuleDestroy());

  it('registers every SPEC 12 name in its own registry, so two instances do not collide', async () => {
    const other = new MetricsService();
    const text = await metrics.render();
    for (const name of ALL_METRIC_NAMES) expect(text).toContain(`# TYPE ${name} `);
    metrics.messageReceived();
    expect(await metrics.sampleValue(METRIC.messagesReceived)).toBe(1);
    expect(await other.sampleValue(METRIC.messagesReceived)).toBe(0);
    other.onModuleDestroy();
  });

  it('counts labelled events per label value', async () => {
    metrics.llmRequest('openai-main');
    metrics.llmRequest('openai-main');
    metrics.llmError('claude');
    metrics.tokensUsedBy('openai-main', 42);
    metrics.tokensUsedBy('openai-main', 0);
    metrics.rateLimited('user_messages');
    metrics.notificationSent('email');
    metrics.notificationFailed('sms');
    expect(await metrics.sampleValue(METRIC.llmRequests, { provider: 'openai-main' })).toBe(2);
    expect(await metrics.sampleValue(METRIC.llmErrors, { provider: 'claude' })).toBe(1);
    expect(await metrics.sampleValue(METRIC.tokensUsed, { provider: 'openai-main' })).toBe(42);
    expect(await metrics.sampleValue(METRIC.rateLimitBlocked, { limiter: 'user_messages' })).toBe(1);
    expect(await metrics.sampleValue(METRIC.notificationsSent, { channel: 'email' })).toBe(1);
    expect(await metrics.sampleValue(METRIC.notificationsFailed, { channel: 'sms' })).toBe(1);
  });

  it('moves the in-flight gauges once per start and once per (idempotent) stop', async () => {
    metrics.websocketOpened();
    const endStream = metrics.llmRequest('demo');
    expect(await metrics.sampleValue(METRIC.websocketConnections)).toBe(1);
    expect(await metrics.sampleValue(METRIC.llmStreamsInFlight)).toBe(1);
    metrics.websocketClosed(2.5);
    endStream();
    endStream();
    expect(await metrics.sampleValue(METRIC.websocketConnections)).toBe(0);
    expect(await metrics.sampleValue(METRIC.llmStreamsInFlight)).toBe(0);
    expect(await metrics.sampleValue(`${METRIC.websocketConnectionDuration}_count`)).toBe(1);
    expect(await metrics.sampleValue(`${METRIC.websocketConnectionDuration}_sum`)).toBe(2.5);
  });

  it('keeps the active-session gauge from the database count plus local changes', async () => {
    metrics.setActiveSessions(5);
    metrics.sessionCreated();
    metrics.sessionEnded();
    metrics.sessionEnded();
    expect(await metrics.sampleValue(METRIC.activeSessions)).toBe(4);
    expect(await metrics.sampleValue(METRIC.sessionsCreated)).toBe(1);
    expect(await metrics.sampleValue(METRIC.sessionsEnded)).toBe(2);
  });

  it('observes histograms with their labels', async () => {
    metrics.observeMongo('findSession', 0.004);
    metrics.observeHttp('/chatbox/sessions/:id', 'get', 0.02);
    metrics.observeLlmLatency('demo', 0.7);
    metrics.observeHumanWait(45);
    expect(
      await metrics.sampleValue(`${METRIC.mongoOperation}_sum`, { operation: 'findSession' }),
    ).toBeCloseTo(0.004);
    expect(
      await metrics.sampleValue(`${METRIC.httpRequestDuration}_count`, {
        endpoint: '/chatbox/sessions/:id',
        method: 'GET',
      }),
    ).toBe(1);
    expect(await metrics.sampleValue(`${METRIC.llmLatency}_count`, { provider: 'demo' })).toBe(1);
    expect(await metrics.sampleValue(`${METRIC.humanWait}_sum`)).toBe(45);
  });

  it('refuses unknown metric names in sampleValue', async () => {
    await expect(metrics.sampleValue('chatbox_nope')).rejects.toThrow(/unknown metric/);
  });
});

describe('endpointOf', () => {
  const request = (route: unknown, baseUrl = '') => ({ route, baseUrl }) as unknown as Request;

  it('uses the route pattern, not the URL', () => {
    expect(endpointOf(request({ path: '/chatbox/sessions/:id' }))).toBe('/chatbox/sessions/:id');
    expect(endpointOf(request({ path: '/:id' }, '/chatbox/admin'))).toBe('/chatbox/admin/:id');
  });

  it('labels unrouted requests and the not-found handler as unmatched', () => {
    expect(endpointOf(request(undefined))).toBe(UNMATCHED_ENDPOINT);
    expect(endpointOf(request({ path: '*path' }, '/chatbox'))).toBe(UNMATCHED_ENDPOINT);
  });
});
