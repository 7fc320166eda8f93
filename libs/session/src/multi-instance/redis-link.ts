import { randomBytes } from 'node:crypto';
import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { AppConfig, ChatboxEvents, InjectConfig, RedisPing, RedisStatus } from '@chatbox/common';

/** A chat decision must never wait on a sick Redis longer than this. */
const REDIS_COMMAND_TIMEOUT_MS = 1_000;
/** Only used on a dead link (a healthy one is closed with QUIT); keeps shutdown from lingering. */
const REDIS_DISCONNECT_TIMEOUT_MS = 200;
const INSTANCE_ID_BYTES = 8;

type Listener = () => void | Promise<void>;

/**
 * The instance's only Redis connections (multi-instance mode, SPEC 10): one for commands and
 * publishing, one for the pub/sub subscription (a subscribed connection can issue nothing else).
 * The session adapters, the shared `RateLimiter` (so the upload and alert budgets too) and readiness
 * (`RedisStatus`) all go through it. Without `REDIS_URL` there is no link and every port keeps its
 * in-process implementation.
 *
 * It also tracks whether Redis answers: an outage is logged once when it starts and once when it
 * ends, counted in `chatbox_redis_up`, and the adapters are told when a connection is back (they
 * re-send what the outage held back and repair what they missed).
 */
@Injectable()
export class RedisLink extends RedisStatus implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(RedisLink.name);
  /** Tells this instance's own publications apart from the others'. */
  readonly instanceId = randomBytes(INSTANCE_ID_BYTES).toString('hex');
  /** Every key and channel starts with it (REDIS_KEY_PREFIX). */
  readonly prefix: string;
  readonly commands?: Redis;
  readonly subscriber?: Redis;
  private failing = false;
  /** The last connection error, shown by readiness while the link is down. */
  private lastError?: string;
  /** Whether `chatbox_redis_up` has been told the first state. */
  private announced = false;
  /** When the command connection last became usable after being unusable (undefined while it is not). */
  private upSince?: number;
  private readonly commandsBack: Listener[] = [];
  private readonly subscriberBack: Listener[] = [];
  private readonly lastWords: Listener[] = [];
  /** Shutting down: nobody should start waiting on another instance any more. */
  closing = false;

  constructor(
    @InjectConfig() config: AppConfig,
    private readonly events: ChatboxEvents,
  ) {
    super();
    this.prefix = config.redisKeyPrefix;
    if (!config.redisUrl) return;
    this.commands = new Redis(config.redisUrl, {
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 1,
      disconnectTimeout: REDIS_DISCONNECT_TIMEOUT_MS,
    });
    this.subscriber = new Redis(config.redisUrl, { disconnectTimeout: REDIS_DISCONNECT_TIMEOUT_MS });
    // Without listeners ioredis prints every reconnect failure; the outage is logged here once.
    this.commands.on('error', (error: Error) => {
      this.lastError = error.message;
    });
    this.subscriber.on('error', () => undefined);
    let commandsReadyBefore = false;
    this.commands.on('ready', () => {
      this.upSince = Date.now();
      this.reportSuccess();
      if (commandsReadyBefore) this.notify(this.commandsBack, 'after reconnecting');
      commandsReadyBefore = true;
    });
    this.commands.on('close', () => {
      this.upSince = undefined;
      if (!this.closing) this.reportFailure('every shared rule', new Error('connection closed'));
    });
    let subscriberReadyBefore = false;
    this.subscriber.on('ready', () => {
      if (subscriberReadyBefore) this.notify(this.subscriberBack, 'after re-subscribing');
      subscriberReadyBefore = true;
    });
  }

  get enabled(): boolean {
    return this.commands !== undefined;
  }

  get configured(): boolean {
    return this.enabled;
  }

  /** For readiness: answers at once while the link is known to be down, else one bounded `PING`. */
  async ping(): Promise<RedisPing> {
    if (!this.commands) return { ok: false, latencyMs: 0, error: 'REDIS_URL is not set' };
    if (this.down) return { ok: false, latencyMs: 0, error: this.lastError ?? 'connection closed' };
    const started = performance.now();
    const latencyMs = () => Math.round(performance.now() - started);
    try {
      await this.commands.ping();
      return { ok: true, latencyMs: latencyMs() };
    } catch (error) {
      return { ok: false, latencyMs: latencyMs(), error: (error as Error).message };
    }
  }

  /** Whether the command connection is known to be unusable right now (skip the timeout wait). */
  get down(): boolean {
    return this.failing && this.commands?.status !== 'ready';
  }

  /**
   * How long Redis has answered without interruption (0 while it does not). Judging another instance
   * gone needs at least one liveness TTL of it: after an outage (or a Redis restart that lost every
   * key) the live instances need a heartbeat to show up again.
   */
  upForMs(now = Date.now()): number {
    return this.upSince === undefined || this.failing ? 0 : now - this.upSince;
  }

  /** Logs the first failure of an outage (and the recovery) instead of every failed command. */
  reportFailure(what: string, error: unknown): void {
    if (!this.failing) {
      this.logger.warn(`Redis unavailable for ${what} (${(error as Error).message}); per-instance fallback`);
      this.events.emit({ type: 'redis.availability', available: false });
    }
    this.failing = true;
  }

  reportSuccess(): void {
    if (this.failing) this.logger.log('Redis answers again; multi-instance state is shared again');
    if (this.failing || this.upSince === undefined) this.upSince = Date.now();
    if (this.failing || !this.announced) this.events.emit({ type: 'redis.availability', available: true });
    this.announced = true;
    this.failing = false;
  }

  /** Called each time the command connection is usable again after an interruption. */
  onCommandsBack(listener: Listener): void {
    this.commandsBack.push(listener);
  }

  /** Called each time the subscription is in place again after an interruption. */
  onSubscriberBack(listener: Listener): void {
    this.subscriberBack.push(listener);
  }

  /** Run on a clean shutdown while the link still works (after the replies were drained). */
  beforeClose(listener: Listener): void {
    this.lastWords.push(listener);
  }

  beforeApplicationShutdown(): void {
    this.closing = true;
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.commands?.status === 'ready')
      await Promise.all(this.lastWords.map((listener) => Promise.resolve(listener()).catch(() => undefined)));
    await Promise.all([close(this.commands), close(this.subscriber)]);
  }

  private notify(listeners: Listener[], when: string): void {
    for (const listener of listeners)
      void Promise.resolve()
        .then(listener)
        .catch((error: unknown) =>
          this.logger.warn({ err: (error as Error).message }, `Redis repair ${when} failed`),
        );
  }
}

async function close(redis: Redis | undefined): Promise<void> {
  if (!redis) return;
  // disconnect() also stops a reconnect loop against a Redis that never came up.
  if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
  else redis.disconnect();
}
