export interface RedisPing {
  ok: boolean;
  latencyMs: number;
  error?: string;
}

/**
 * What readiness needs to know of Redis, answered by the instance's one Redis link (libs/session
 * `RedisLink`) so that nobody opens a connection of their own to ask.
 */
export abstract class RedisStatus {
  /** Whether REDIS_URL is set (multi-instance mode). */
  abstract readonly configured: boolean;
  /** A `PING` on the link's command connection, bounded by its command timeout; never throws. */
  abstract ping(): Promise<RedisPing>;
}
