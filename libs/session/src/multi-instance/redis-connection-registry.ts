import { OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import { AppConfig } from '@chatbox/common';
import type { ClientConnection } from '../ports/client-connection';
import {
  ConnectionRegistry,
  InProcessConnectionRegistry,
  Reservation,
  ReservationRefusal,
} from '../ports/connection-registry';
import { RedisLink } from './redis-link';

/** How long an instance counts as alive after its last heartbeat. */
const INSTANCE_TTL_MS = 30_000;
const HEARTBEAT_MS = 10_000;
/** A per-user hash nobody touches any more disappears after this. */
const USER_KEY_TTL_MS = 2 * INSTANCE_TTL_MS;

/**
 * Per-user hash `<prefix>conn:<user>`, one field per instance = its sockets of that user. Fields of
 * instances whose liveness key expired (crash) are dropped before counting.
 * KEYS[1] user hash, KEYS[2] own liveness key; ARGV instance id, max, liveness prefix, ttls.
 */
const RESERVE_SCRIPT = `
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
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
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`;

/** KEYS[1] user hash; ARGV instance id. */
const RELEASE_SCRIPT = `
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
`;

/**
 * `MAX_CONNECTIONS_PER_USER` shared by every instance (SPEC 10); `MAX_CONNECTIONS` stays per
 * instance (SPEC 2) and the sockets themselves are tracked locally. A heartbeat keeps this
 * instance's liveness key and re-asserts its per-user counts, so the counts of a crashed instance
 * stop counting within `INSTANCE_TTL_MS`. While Redis cannot answer, the per-user limit is checked
 * against this instance's sockets only (logged once per outage).
 *
 * Note: the reserve script reads the liveness keys of the other instances, which Redis Cluster
 * only allows when they share a hash slot; use a hash-tagged `REDIS_KEY_PREFIX` (`{chatbox}:`) there.
 */
export class RedisConnectionRegistry
  extends ConnectionRegistry
  implements OnModuleInit, OnApplicationShutdown
{
  /** The sockets of this instance (binding, lookups); only the reservations differ. */
  private readonly sockets: InProcessConnectionRegistry;
  private localReserved = 0;
  /** This instance's reservations per user; those counted in Redis are also re-asserted there. */
  private readonly localPerUser = new Map<string, { total: number; shared: number }>();
  private heartbeat?: NodeJS.Timeout;

  constructor(
    private readonly appConfig: AppConfig,
    private readonly link: RedisLink,
  ) {
    super();
    this.sockets = new InProcessConnectionRegistry(appConfig);
  }

  add(connection: ClientConnection): void {
    this.sockets.add(connection);
  }

  remove(connection: ClientConnection): void {
    this.sockets.remove(connection);
  }

  bind(connection: ClientConnection, sessionId: string | undefined): void {
    this.sockets.bind(connection, sessionId);
  }

  connectionsOf(sessionId: string): ClientConnection[] {
    return this.sockets.connectionsOf(sessionId);
  }

  dashboards(): ClientConnection[] {
    return this.sockets.dashboards();
  }

  all(): ClientConnection[] {
    return this.sockets.all();
  }

  get size(): number {
    return this.sockets.size;
  }

  /** Here, or (as far as Redis knows) any live socket of the user on another instance. */
  async isSessionUserConnected(sessionId: string, userId: string): Promise<boolean> {
    if (this.sockets.isSessionUserConnected(sessionId, userId)) return true;
    const counts = await this.redis.hgetall(this.userKey(userId));
    for (const [instance, count] of Object.entries(counts)) {
      if (instance === this.link.instanceId || Number(count) <= 0) continue;
      if (await this.isInstanceAlive(instance)) return true;
    }
    return false;
  }

  async isInstanceAlive(instanceId: string): Promise<boolean> {
    return (await this.redis.exists(this.livenessKey(instanceId))) === 1;
  }

  private get redis(): Redis {
    return this.link.commands as Redis;
  }

  onModuleInit(): void {
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
    void this.beat();
  }

  onApplicationShutdown(): void {
    clearInterval(this.heartbeat);
  }

  async reserve(userId: string): Promise<Reservation | ReservationRefusal> {
    const { maxConnections, maxConnectionsPerUser } = this.appConfig.limits;
    if (this.localReserved >= maxConnections) return 'instance_limit';
    const mine = this.localPerUser.get(userId) ?? { total: 0, shared: 0 };
    // Counted here first, so concurrent handshakes of this instance see each other.
    this.localReserved++;
    mine.total++;
    this.localPerUser.set(userId, mine);
    const shared = await this.reserveShared(userId, maxConnectionsPerUser);
    if (shared === 'refused' || (shared === 'local' && mine.total > maxConnectionsPerUser)) {
      this.forget(userId, false);
      return 'user_limit';
    }
    if (shared === 'shared') mine.shared++;
    let released = false;
    return {
      userId,
      release: () => {
        if (released) return;
        released = true;
        this.forget(userId, shared === 'shared');
      },
    };
  }

  /** 'shared': counted in Redis; 'refused': over the shared limit; 'local': Redis unavailable. */
  private async reserveShared(userId: string, max: number): Promise<'shared' | 'refused' | 'local'> {
    if (this.link.down) return 'local';
    try {
      const allowed = await this.redis.eval(
        RESERVE_SCRIPT,
        2,
        this.userKey(userId),
        this.livenessKey(this.link.instanceId),
        this.link.instanceId,
        max,
        this.livenessKey(''),
        INSTANCE_TTL_MS,
        USER_KEY_TTL_MS,
      );
      this.link.reportSuccess();
      return allowed === 1 ? 'shared' : 'refused';
    } catch (error) {
      this.link.reportFailure('connection limits', error);
      return 'local';
    }
  }

  private forget(userId: string, shared: boolean): void {
    this.localReserved--;
    const mine = this.localPerUser.get(userId);
    if (mine) {
      mine.total--;
      if (shared) mine.shared--;
      if (mine.total <= 0) this.localPerUser.delete(userId);
    }
    if (!shared || this.link.down) return;
    this.redis
      .eval(RELEASE_SCRIPT, 1, this.userKey(userId), this.link.instanceId)
      .catch((error: unknown) => this.link.reportFailure('connection limits', error));
  }

  /**
   * Liveness, and this instance's shared counts restored if they were dropped (this instance was
   * taken for dead during a Redis hiccup). HSETNX: a live count is never overwritten.
   */
  private async beat(): Promise<void> {
    if (this.link.down) return;
    const pipeline = this.redis
      .multi()
      .set(this.livenessKey(this.link.instanceId), '1', 'PX', INSTANCE_TTL_MS);
    for (const [userId, { shared }] of this.localPerUser) {
      if (shared <= 0) continue;
      pipeline
        .hsetnx(this.userKey(userId), this.link.instanceId, shared)
        .pexpire(this.userKey(userId), USER_KEY_TTL_MS);
    }
    await pipeline.exec().then(
      () => this.link.reportSuccess(),
      (error: unknown) => this.link.reportFailure('connection limits', error),
    );
  }

  private userKey(userId: string): string {
    return `${this.link.prefix}conn:${userId}`;
  }

  private livenessKey(instanceId: string): string {
    return `${this.link.prefix}instance:${instanceId}`;
  }
}
