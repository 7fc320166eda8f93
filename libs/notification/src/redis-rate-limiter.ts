import { Logger } from '@nestjs/common';
import Redis from 'ioredis';
import { redisWindowHit } from '@chatbox/common';
import { Clock, InMemoryNotificationRateLimiter, NotificationRateLimiter } from './rate-limiter';

export const DEFAULT_REDIS_KEY_PREFIX = 'chatbox:notify:';
/** An alert decision must never wait on a sick Redis longer than this. */
const REDIS_COMMAND_TIMEOUT_MS = 1_000;
/** Only used on a dead link (a healthy one is closed with QUIT); keeps shutdown from lingering. */
const REDIS_DISCONNECT_TIMEOUT_MS = 200;

export interface RedisNotificationRateLimiterOptions {
  keyPrefix?: string;
  /**
   * Times come from the instance clock rather than Redis TIME so tests can drive the window; the
   * skew between instances (NTP-synced pods) is negligible against windows of minutes.
   */
  now?: Clock;
  /** Close the client on `close()` (true when this limiter created it). */
  ownsClient?: boolean;
}

/**
 * Budget shared by every instance (SPEC 10). While Redis cannot answer, decisions fall back to a
 * per-instance in-memory window: a few duplicate alerts beat a silent outage or a blocked chat.
 */
export class RedisNotificationRateLimiter implements NotificationRateLimiter {
  private readonly logger = new Logger(RedisNotificationRateLimiter.name);
  private readonly keyPrefix: string;
  private readonly now: Clock;
  private readonly fallback: InMemoryNotificationRateLimiter;
  private redisFailing = false;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisNotificationRateLimiterOptions = {},
  ) {
    this.keyPrefix = options.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX;
    this.now = options.now ?? Date.now;
    this.fallback = new InMemoryNotificationRateLimiter(this.now);
  }

  /**
   * A client of its own. Commands issued while it is still connecting wait (bounded by the command
   * timeout) so the first alerts after start-up are already shared.
   */
  static connect(url: string, options: Omit<RedisNotificationRateLimiterOptions, 'ownsClient'> = {}) {
    const redis = new Redis(url, {
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 1,
      disconnectTimeout: REDIS_DISCONNECT_TIMEOUT_MS,
    });
    const limiter = new RedisNotificationRateLimiter(redis, { ...options, ownsClient: true });
    // Without a listener ioredis prints every reconnect failure; the fallback path logs instead.
    redis.on('error', () => undefined);
    return limiter;
  }

  async tryAcquire(key: string, limit: number, windowMs: number): Promise<boolean> {
    const now = this.now();
    // Known outage: skip the wait for a command timeout on every alert until the client reconnects.
    if (this.redisFailing && this.redis.status !== 'ready')
      return this.fallback.acquire(key, limit, windowMs);
    try {
      const { allowed } = await redisWindowHit(this.redis, this.keyPrefix + key, limit, windowMs, now);
      if (this.redisFailing) this.logger.log('Redis answers again; notification limits are shared again');
      this.redisFailing = false;
      return allowed;
    } catch (error) {
      if (!this.redisFailing)
        this.logger.warn(
          `Redis unavailable for notification limits (${(error as Error).message}); using per-instance limits`,
        );
      this.redisFailing = true;
      return this.fallback.acquire(key, limit, windowMs);
    }
  }

  async close(): Promise<void> {
    if (!this.options.ownsClient) return;
    // disconnect() also stops a reconnect loop against a Redis that never came up.
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
    else this.redis.disconnect();
  }
}
