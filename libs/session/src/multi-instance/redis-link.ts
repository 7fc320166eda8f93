import { randomBytes } from 'node:crypto';
import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { AppConfig, InjectConfig } from '@chatbox/common';

/** A chat decision must never wait on a sick Redis longer than this. */
const REDIS_COMMAND_TIMEOUT_MS = 1_000;
/** Only used on a dead link (a healthy one is closed with QUIT); keeps shutdown from lingering. */
const REDIS_DISCONNECT_TIMEOUT_MS = 200;
const INSTANCE_ID_BYTES = 8;

/**
 * The Redis connections of multi-instance mode (SPEC 10): one for commands and publishing, one for
 * the pub/sub subscription (a subscribed connection can issue nothing else). Without `REDIS_URL`
 * there is no link and the session ports keep their in-process implementations.
 */
@Injectable()
export class RedisLink implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(RedisLink.name);
  /** Tells this instance's own publications apart from the others'. */
  readonly instanceId = randomBytes(INSTANCE_ID_BYTES).toString('hex');
  /** Every key and channel starts with it (REDIS_KEY_PREFIX). */
  readonly prefix: string;
  readonly commands?: Redis;
  readonly subscriber?: Redis;
  private failing = false;
  /** Shutting down: nobody should start waiting on another instance any more. */
  closing = false;

  constructor(@InjectConfig() config: AppConfig) {
    this.prefix = config.redisKeyPrefix;
    if (!config.redisUrl) return;
    this.commands = new Redis(config.redisUrl, {
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 1,
      disconnectTimeout: REDIS_DISCONNECT_TIMEOUT_MS,
    });
    this.subscriber = new Redis(config.redisUrl, { disconnectTimeout: REDIS_DISCONNECT_TIMEOUT_MS });
    // Without listeners ioredis prints every reconnect failure; callers log their fallbacks.
    this.commands.on('error', () => undefined);
    this.subscriber.on('error', () => undefined);
  }

  get enabled(): boolean {
    return this.commands !== undefined;
  }

  /** Whether the command connection is known to be unusable right now (skip the timeout wait). */
  get down(): boolean {
    return this.failing && this.commands?.status !== 'ready';
  }

  /** Logs the first failure of an outage (and the recovery) instead of every failed command. */
  reportFailure(what: string, error: unknown): void {
    if (!this.failing)
      this.logger.warn(`Redis unavailable for ${what} (${(error as Error).message}); per-instance fallback`);
    this.failing = true;
  }

  reportSuccess(): void {
    if (this.failing) this.logger.log('Redis answers again; multi-instance state is shared again');
    this.failing = false;
  }

  beforeApplicationShutdown(): void {
    this.closing = true;
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([close(this.commands), close(this.subscriber)]);
  }
}

async function close(redis: Redis | undefined): Promise<void> {
  if (!redis) return;
  // disconnect() also stops a reconnect loop against a Redis that never came up.
  if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
  else redis.disconnect();
}
