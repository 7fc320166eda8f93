import { Logger } from '@nestjs/common';
import type Redis from 'ioredis';
import { randomHex } from '@chatbox/common';
import { ReplyLock, ReplyLockRelease, SharedReplySlot } from '../ports/reply-lock';
import { InstanceLiveness } from './instance-liveness';
import { RedisLink } from './redis-link';

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

const noLock: ReplyLockRelease = () => Promise.resolve();
const unshared: SharedReplySlot = { release: () => undefined };

/**
 * One reply at a time per session across instances (SPEC 4.5, 10): `SET <prefix>lock:<session>
 * <instance>:<token> NX PX <INSTANCE_LIVENESS_TTL>`, renewed every heartbeat interval while the reply
 * runs, deleted (only by its holder) at the end. The holder's instance id in the value lets whoever
 * ends a crashed instance's reply release its lock at once (`lockHolderPrefix`). A reply finding the
 * lock taken queues behind it by polling with a growing backoff. While Redis cannot answer, replies
 * run under the per-instance queue only (logged once per outage).
 *
 * The queue bound (running + waiting replies of a session, SERVICE_BUSY beyond) is a counted hash
 * `<prefix>queue:<session>` shared by every instance; a crashed instance's count stops counting with
 * its liveness key.
 */
export class RedisReplyLock extends ReplyLock {
  private readonly logger = new Logger(RedisReplyLock.name);

  override get sharedAcrossInstances(): boolean {
    return true;
  }

  constructor(
    private readonly link: RedisLink,
    private readonly liveness: InstanceLiveness,
  ) {
    super();
  }

  private get redis(): Redis {
    return this.link.commands as Redis;
  }

  async acquire(sessionId: string): Promise<ReplyLockRelease> {
    const key = lockKey(this.link.prefix, sessionId);
    const token = `${lockHolderPrefix(this.link.instanceId)}${randomHex(TOKEN_BYTES)}`;
    const deadline = Date.now() + MAX_WAIT_MS;
    let delay = POLL_FIRST_MS;
    for (;;) {
      if (this.link.down) return noLock;
      try {
        if ((await this.redis.set(key, token, 'PX', this.liveness.ttlMs, 'NX')) === 'OK') break;
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
        .eval(RENEW_SCRIPT, 1, key, token, this.liveness.ttlMs)
        .catch((error: unknown) => this.link.reportFailure('the reply lock', error));
    }, this.liveness.intervalMs);
    renewal.unref();
    return async () => {
      clearInterval(renewal);
      await this.redis
        .eval(RELEASE_SCRIPT, 1, key, token)
        .catch((error: unknown) => this.link.reportFailure('the reply lock', error));
    };
  }

  /**
   * Held by a live reply anywhere. While Redis cannot say, `whenUnknown`: "yes" by default, as
   * nothing is ended on a guess.
   */
  override async isHeld(sessionId: string, whenUnknown = true): Promise<boolean> {
    if (this.link.down) return whenUnknown;
    try {
      return (await this.redis.exists(lockKey(this.link.prefix, sessionId))) === 1;
    } catch (error) {
      this.link.reportFailure('the reply lock', error);
      return whenUnknown;
    }
  }

  override async reserveSlot(sessionId: string, max: number): Promise<SharedReplySlot | undefined> {
    const key = `${this.link.prefix}queue:${sessionId}`;
    const allowed = await this.liveness.reserveCounted(key, max);
    // Redis unavailable: the per-instance queue bound alone applies.
    if (allowed === undefined) return unshared;
    if (!allowed) return undefined;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.liveness.releaseCounted(key);
      },
    };
  }
}

export function lockKey(prefix: string, sessionId: string): string {
  return `${prefix}lock:${sessionId}`;
}

/** How the lock value of an instance's replies starts. */
export function lockHolderPrefix(instanceId: string): string {
  return `${instanceId}:`;
}
