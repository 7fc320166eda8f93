import { randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type Redis from 'ioredis';
import { ReplyLock, ReplyLockRelease } from '../ports/reply-lock';
import { RedisLink } from './redis-link';

/** The lock expires this long after its last renewal (a crashed holder blocks no one for longer). */
const LOCK_TTL_MS = 15_000;
const RENEW_EVERY_MS = 5_000;
const POLL_FIRST_MS = 25;
const POLL_MAX_MS = 500;
const POLL_FACTOR = 1.5;
/**
 * A reply waits at most this long for another instance's reply of the same session; then it runs
 * anyway (logged): a stuck holder must not silence the session for good.
 */
const MAX_WAIT_MS = 5 * 60_000;
const TOKEN_BYTES = 8;

/** KEYS[1] lock; ARGV token, ttl. */
const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;
/** KEYS[1] lock; ARGV token. */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * One reply at a time per session across instances (SPEC 4.5, 10): `SET <prefix>lock:<session>
 * <token> NX PX`, renewed while the reply runs, deleted (only by its holder) at the end. A reply
 * finding the lock taken queues behind it by polling with a growing backoff. While Redis cannot
 * answer, replies run under the per-instance queue only (logged once per outage).
 */
export class RedisReplyLock extends ReplyLock {
  private readonly logger = new Logger(RedisReplyLock.name);

  override get sharedAcrossInstances(): boolean {
    return true;
  }

  constructor(private readonly link: RedisLink) {
    super();
  }

  private get redis(): Redis {
    return this.link.commands as Redis;
  }

  async acquire(sessionId: string): Promise<ReplyLockRelease> {
    const key = `${this.link.prefix}lock:${sessionId}`;
    const token = randomBytes(TOKEN_BYTES).toString('hex');
    const deadline = Date.now() + MAX_WAIT_MS;
    let delay = POLL_FIRST_MS;
    for (;;) {
      if (this.link.down) return noLock;
      try {
        if ((await this.redis.set(key, token, 'PX', LOCK_TTL_MS, 'NX')) === 'OK') break;
        this.link.reportSuccess();
      } catch (error) {
        this.link.reportFailure('the reply lock', error);
        return noLock;
      }
      if (this.link.closing) return noLock;
      if (Date.now() >= deadline) {
        this.logger.warn({ sessionId }, 'reply lock still held elsewhere; replying anyway');
        return noLock;
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(POLL_MAX_MS, delay * POLL_FACTOR);
    }
    const renewal = setInterval(() => {
      this.redis
        .eval(RENEW_SCRIPT, 1, key, token, LOCK_TTL_MS)
        .catch((error: unknown) => this.link.reportFailure('the reply lock', error));
    }, RENEW_EVERY_MS);
    renewal.unref();
    return async () => {
      clearInterval(renewal);
      await this.redis
        .eval(RELEASE_SCRIPT, 1, key, token)
        .catch((error: unknown) => this.link.reportFailure('the reply lock', error));
    };
  }
}

const noLock: ReplyLockRelease = () => Promise.resolve();
