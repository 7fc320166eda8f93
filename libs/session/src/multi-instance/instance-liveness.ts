import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import type { ChainableCommander } from 'ioredis';
import { AppConfig, InjectConfig } from '@chatbox/common';
import { RedisLink } from './redis-link';

/**
 * A count per instance in one hash (`field = instance id`): fields of instances whose liveness key
 * is gone are dropped before summing, so a crashed instance stops counting once its key expires.
 * KEYS[1] the hash; ARGV own id, max, liveness key prefix, hash TTL (ms).
 */
const RESERVE_COUNTED_SCRIPT = `
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  local instance = fields[i]
  if instance == ARGV[1] or redis.call('EXISTS', ARGV[3] .. instance) == 1 then
    total = total + tonumber(fields[i + 1])
  else
    redis.call('HDEL', KEYS[1], instance)
  end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

/** KEYS[1] the hash; ARGV own id. */
const RELEASE_COUNTED_SCRIPT = `
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
`;

/** A counted hash nobody touches any more disappears after this many liveness TTLs. */
const COUNTED_KEY_TTLS = 2;

/** This instance's share of one counted hash, as Redis should hold it. */
interface CountedShare {
  /** Places taken in Redis and not given back. */
  count: number;
  /** Reservations sent whose answer has not arrived: Redis may or may not count them yet. */
  reserving: number;
}

type GoneHandler = (instanceId: string) => Promise<void>;

/**
 * Which instances are alive (SPEC 10, issue 14). Each instance sets `<prefix>instance:<id>` with a
 * TTL of `INSTANCE_LIVENESS_TTL` every `INSTANCE_HEARTBEAT_INTERVAL` and lists itself in
 * `<prefix>instances`. After each heartbeat it looks for listed instances whose key expired: their
 * work is taken over by the handlers (replies ended as interrupted, locks released), then they are
 * unlisted. Nobody is judged gone until Redis has answered this instance for one whole TTL: after an
 * outage (or a Redis restart that lost every key) the live instances need one heartbeat to reappear.
 *
 * It also keeps this instance's share of every counted hash (connection slots per user, reply places
 * per session) and writes it whole with each heartbeat: `HSET` of the true count, `HDEL` once it is
 * zero. So a release Redis never saw (it was away, or the command timed out), and a count Redis lost
 * (a restart) or dropped (this instance was taken for gone), are right again one heartbeat after
 * Redis answers; the heartbeat that runs as soon as the connection is back does it first. Without
 * that, a socket closed during an outage would count until the hash expires, which is never for a
 * user who keeps another socket open.
 */
@Injectable()
export class InstanceLiveness implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(InstanceLiveness.name);
  /**
   * By hash key; a share that reached zero stays until a heartbeat has deleted its field, so this
   * holds the live shares and those touched since the last heartbeat Redis took.
   */
  private readonly counted = new Map<string, CountedShare>();
  private readonly goneHandlers: GoneHandler[] = [];
  private readonly beatListeners: (() => void)[] = [];
  private timer?: NodeJS.Timeout;
  private beating = false;
  readonly ttlMs: number;
  readonly intervalMs: number;

  constructor(
    @InjectConfig() config: AppConfig,
    private readonly link: RedisLink,
  ) {
    this.ttlMs = config.instances.livenessTtlMs;
    this.intervalMs = config.instances.heartbeatIntervalMs;
  }

  private get redis(): Redis {
    return this.link.commands as Redis;
  }

  get instanceId(): string {
    return this.link.instanceId;
  }

  onModuleInit(): void {
    if (!this.link.enabled) return;
    this.timer = setInterval(() => void this.beat(), this.intervalMs);
    this.timer.unref();
    void this.beat();
    // Back after an outage (maybe a Redis that lost every key): shown alive again at once.
    this.link.onCommandsBack(() => this.beat());
    // Unlisted at a clean shutdown: its counts stop counting at once instead of after the TTL.
    this.link.beforeClose(async () => {
      await this.redis
        .multi()
        .del(this.livenessKey(this.instanceId))
        .srem(this.listKey, this.instanceId)
        .exec();
    });
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Called after each heartbeat Redis took (a moment to retry what an earlier command could not do). */
  afterBeat(listener: () => void): void {
    this.beatListeners.push(listener);
  }

  /** Takes over what a gone instance left (idempotent: several instances may notice it at once). */
  onInstanceGone(handler: GoneHandler): void {
    this.goneHandlers.push(handler);
  }

  async isAlive(instanceId: string): Promise<boolean> {
    return (await this.redis.exists(this.livenessKey(instanceId))) === 1;
  }

  /** Whether an instance whose key is missing may be taken for gone (see the class comment). */
  get canJudge(): boolean {
    return this.link.upForMs() >= this.ttlMs;
  }

  /** Gone for sure: judged, not alive, not this instance. */
  async isGone(instanceId: string): Promise<boolean> {
    if (instanceId === this.instanceId || !this.canJudge) return false;
    return !(await this.isAlive(instanceId));
  }

  livenessKey(instanceId: string): string {
    return livenessKey(this.link.prefix, instanceId);
  }

  /**
   * One more in the counted hash unless the live instances already hold `max`; undefined when Redis
   * cannot answer (the caller falls back to its own count).
   */
  async reserveCounted(key: string, max: number): Promise<boolean | undefined> {
    const share = this.shareOf(key);
    share.reserving++;
    try {
      const allowed = await this.redis.eval(
        RESERVE_COUNTED_SCRIPT,
        1,
        key,
        this.instanceId,
        max,
        this.livenessKey(''),
        COUNTED_KEY_TTLS * this.ttlMs,
      );
      this.link.reportSuccess();
      if (allowed === 1) share.count++;
      return allowed === 1;
    } catch (error) {
      // Not counted here even if Redis ran it: the caller falls back, and the heartbeat sets Redis right.
      this.link.reportFailure('shared limits', error);
      return undefined;
    } finally {
      share.reserving--;
    }
  }

  /**
   * Gives back a place `reserveCounted` took. Counted here at once; Redis is told now if it answers,
   * else by the next heartbeat that reaches it (which writes the whole share).
   */
  releaseCounted(key: string): void {
    const share = this.counted.get(key);
    if (share && share.count > 0) share.count--;
    if (this.link.down) return;
    this.redis
      .eval(RELEASE_COUNTED_SCRIPT, 1, key, this.instanceId)
      .catch((error: unknown) => this.link.reportFailure('shared limits', error));
  }

  private shareOf(key: string): CountedShare {
    let share = this.counted.get(key);
    if (!share) {
      share = { count: 0, reserving: 0 };
      this.counted.set(key, share);
    }
    return share;
  }

  /**
   * This instance's true share of every counted hash, written whole (its own field only). Commands
   * reach Redis in the order they are sent, so a count taken now is what Redis holds after every
   * reserve and release sent before it; a hash with a reservation still unanswered is skipped (the
   * answer decides the count) and written by the next heartbeat. Returns the keys whose field is
   * deleted, forgotten here once the heartbeat succeeded.
   */
  private writeCounted(pipeline: ChainableCommander): string[] {
    const zero: string[] = [];
    for (const [key, share] of this.counted) {
      if (share.reserving > 0) continue;
      if (share.count > 0)
        pipeline.hset(key, this.instanceId, share.count).pexpire(key, COUNTED_KEY_TTLS * this.ttlMs);
      else {
        pipeline.hdel(key, this.instanceId);
        zero.push(key);
      }
    }
    return zero;
  }

  private get listKey(): string {
    return `${this.link.prefix}instances`;
  }

  private async beat(): Promise<void> {
    if (this.link.down || this.beating) return;
    this.beating = true;
    try {
      const pipeline = this.redis
        .multi()
        .set(this.livenessKey(this.instanceId), '1', 'PX', this.ttlMs)
        .sadd(this.listKey, this.instanceId);
      const zero = this.writeCounted(pipeline);
      await pipeline.exec();
      this.link.reportSuccess();
      for (const key of zero) {
        const share = this.counted.get(key);
        if (share?.count === 0 && share.reserving === 0) this.counted.delete(key);
      }
      for (const listener of this.beatListeners) listener();
      if (this.canJudge) await this.takeOverGone();
    } catch (error) {
      this.link.reportFailure('instance liveness', error);
    } finally {
      this.beating = false;
    }
  }

  private async takeOverGone(): Promise<void> {
    const others = (await this.redis.smembers(this.listKey)).filter((id) => id !== this.instanceId);
    if (others.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const id of others) pipeline.exists(this.livenessKey(id));
    const alive = ((await pipeline.exec()) ?? []).map(([, exists]) => exists === 1);
    for (const [index, id] of others.entries()) {
      if (alive[index]) continue;
      this.logger.warn({ instance: id }, 'an instance stopped answering; taking over what it left');
      let complete = true;
      for (const handler of this.goneHandlers)
        await handler(id).catch((error: unknown) => {
          complete = false;
          this.logger.warn(
            { err: (error as Error).message, instance: id },
            'take-over failed; next heartbeat retries',
          );
        });
      // Listed until everything it left is taken over.
      if (complete) await this.redis.srem(this.listKey, id);
    }
  }
}

export function livenessKey(prefix: string, instanceId: string): string {
  return `${prefix}instance:${instanceId}`;
}
