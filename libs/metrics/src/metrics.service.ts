import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BUCKETS, METRIC } from './metric-names';

const MS_PER_SECOND = 1000;

type SampleValue = {
  value: number;
  labels: Record<string, string | number | undefined>;
  metricName?: string;
};

/** Stops a timer started by the service; calling it twice counts once. */
export type StopTimer = () => void;

/**
 * The only place that knows prom-client. Other modules call these small typed methods, so metric
 * names, label names and buckets live in one file.
 *
 * Each instance owns its registry (not prom-client's global one): several applications in one
 * test process would otherwise fight over the same metric names.
 */
@Injectable()
export class MetricsService implements OnModuleDestroy {
  readonly registry = new Registry();

  private readonly websocketConnections = this.gauge(
    METRIC.websocketConnections,
    'WebSocket connections currently open on this instance',
  );
  private readonly messagesReceived = this.counter(
    METRIC.messagesReceived,
    'Chat messages received from clients',
  );
  private readonly messagesSent = this.counter(METRIC.messagesSent, 'Chat messages sent to clients');
  private readonly messageErrors = this.counter(
    METRIC.messageErrors,
    'Client messages answered with an error frame',
  );
  private readonly llmRequests = this.counter(METRIC.llmRequests, 'Requests to LLM providers', ['provider']);
  private readonly llmErrors = this.counter(METRIC.llmErrors, 'Failed LLM requests', ['provider']);
  private readonly tokensUsed = this.counter(METRIC.tokensUsed, 'LLM tokens used (prompt + completion)', [
    'provider',
  ]);
  private readonly llmLatency = this.histogram(
    METRIC.llmLatency,
    'Time from sending an LLM request to its first token',
    BUCKETS.llmFirstToken,
    ['provider'],
  );
  private readonly activeSessions = this.gauge(
    METRIC.activeSessions,
    'Active chat sessions (read from the database at start and on every resync)',
  );
  private readonly sessionsCreated = this.counter(METRIC.sessionsCreated, 'Chat sessions created');
  private readonly sessionsEnded = this.counter(METRIC.sessionsEnded, 'Chat sessions ended');
  private readonly adminTakeovers = this.counter(METRIC.adminTakeovers, 'Admin takeovers started');
  private readonly mongoOperation = this.histogram(
    METRIC.mongoOperation,
    'Duration of MongoDB repository operations, retries included',
    BUCKETS.mongoOperation,
    ['operation'],
  );
  private readonly rateLimitBlocked = this.counter(
    METRIC.rateLimitBlocked,
    'Requests refused by a rate limiter',
    ['limiter'],
  );
  private readonly websocketConnectionDuration = this.histogram(
    METRIC.websocketConnectionDuration,
    'Lifetime of closed WebSocket connections',
    BUCKETS.websocketConnection,
  );
  private readonly httpRequestDuration = this.histogram(
    METRIC.httpRequestDuration,
    'Duration of HTTP requests by route pattern',
    BUCKETS.httpRequest,
    ['endpoint', 'method'],
  );
  private readonly llmStreamsInFlight = this.gauge(
    METRIC.llmStreamsInFlight,
    'LLM replies currently streaming on this instance',
  );
  private readonly humanWait = this.histogram(
    METRIC.humanWait,
    'Time from a help request to an admin taking the session over',
    BUCKETS.humanWait,
  );
  private readonly notificationsSent = this.counter(METRIC.notificationsSent, 'Admin alerts delivered', [
    'channel',
  ]);
  private readonly notificationsFailed = this.counter(
    METRIC.notificationsFailed,
    'Admin alerts that failed',
    ['channel'],
  );

  private readonly redisUp = this.gauge(
    METRIC.redisUp,
    'Multi-instance mode: 1 while this instance reaches Redis, 0 while it does not',
  );
  private readonly orphanedReplies = this.counter(
    METRIC.orphanedReplies,
    'Replies of a gone instance ended as interrupted by this instance',
  );
  private readonly replyFramesRecovered = this.counter(
    METRIC.replyFramesRecovered,
    'Reply frames this instance had missed, fetched from the reply stream before delivery',
  );

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Content-Type of `render()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Prometheus text exposition format. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  onModuleDestroy(): void {
    this.registry.clear();
  }

  // WebSocket

  /** A socket was accepted. */
  websocketOpened(): void {
    this.websocketConnections.inc();
  }

  /**
   * A socket closed after `seconds` (timed by the gateway, which keeps each socket's opening time):
   * nothing is held here per socket.
   */
  websocketClosed(seconds: number): void {
    this.websocketConnections.dec();
    this.websocketConnectionDuration.observe(seconds);
  }

  messageReceived(): void {
    this.messagesReceived.inc();
  }

  messageSent(count = 1): void {
    this.messagesSent.inc(count);
  }

  messageError(): void {
    this.messageErrors.inc();
  }

  rateLimited(limiter: string): void {
    this.rateLimitBlocked.inc({ limiter });
  }

  // LLM

  /** Counts a request and starts its stream; the returned function ends the in-flight stream. */
  llmRequest(provider: string): StopTimer {
    this.llmRequests.inc({ provider });
    this.llmStreamsInFlight.inc();
    return this.once(() => this.llmStreamsInFlight.dec());
  }

  llmError(provider: string): void {
    this.llmErrors.inc({ provider });
  }

  /** Time to first token. */
  observeLlmLatency(provider: string, seconds: number): void {
    this.llmLatency.observe({ provider }, seconds);
  }

  tokensUsedBy(provider: string, tokens: number): void {
    if (tokens > 0) this.tokensUsed.inc({ provider }, tokens);
  }

  // Sessions

  sessionCreated(): void {
    this.sessionsCreated.inc();
    this.activeSessions.inc();
  }

  sessionEnded(): void {
    this.sessionsEnded.inc();
    this.activeSessions.dec();
  }

  /** The database's count of active sessions (at start and on every resync). */
  setActiveSessions(count: number): void {
    this.activeSessions.set(count);
  }

  adminTakeover(): void {
    this.adminTakeovers.inc();
  }

  /** Seconds a user waited between asking for a human and an admin taking over. */
  observeHumanWait(seconds: number): void {
    this.humanWait.observe(seconds);
  }

  // Several instances

  setRedisAvailable(available: boolean): void {
    this.redisUp.set(available ? 1 : 0);
  }

  orphanedReplyClosed(): void {
    this.orphanedReplies.inc();
  }

  replyFramesRecoveredBy(count: number): void {
    if (count > 0) this.replyFramesRecovered.inc(count);
  }

  // Notifications

  notificationSent(channel: string): void {
    this.notificationsSent.inc({ channel });
  }

  notificationFailed(channel: string): void {
    this.notificationsFailed.inc({ channel });
  }

  // Infrastructure

  observeMongo(operation: string, seconds: number): void {
    this.mongoOperation.observe({ operation }, seconds);
  }

  /** `endpoint` must be a route pattern (`/chatbox/sessions/:id`), never a raw URL. */
  observeHttp(endpoint: string, method: string, seconds: number): void {
    this.httpRequestDuration.observe({ endpoint, method: method.toUpperCase() }, seconds);
  }

  /**
   * Sum of the samples named `sample` whose labels include `labels`. For a histogram pass
   * `<name>_count` or `<name>_sum`. Lets tests (and other modules' tests) read a metric without
   * parsing the exposition text.
   */
  async sampleValue(sample: string, labels: Record<string, string> = {}): Promise<number> {
    const metricName = sample.replace(/_(count|sum|bucket)$/, '');
    const metric = this.registry.getSingleMetric(sample) ?? this.registry.getSingleMetric(metricName);
    if (!metric) throw new Error(`unknown metric ${sample}`);
    const { name, values } = (await metric.get()) as { name: string; values: SampleValue[] };
    const wanted = Object.entries(labels);
    return values
      .filter((value) => (value.metricName ?? name) === sample)
      .filter((value) => wanted.every(([key, expected]) => String(value.labels[key]) === expected))
      .reduce((total, value) => total + value.value, 0);
  }

  private once(finish: (seconds: number) => void): StopTimer {
    const started = performance.now();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      finish((performance.now() - started) / MS_PER_SECOND);
    };
  }

  private counter(name: string, help: string, labelNames: string[] = []): Counter {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private gauge(name: string, help: string, labelNames: string[] = []): Gauge {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  private histogram(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames: string[] = [],
  ): Histogram {
    return new Histogram({ name, help, labelNames, buckets: [...buckets], registers: [this.registry] });
  }
}
