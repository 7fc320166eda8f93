import type Redis from 'ioredis';
import { AppConfig } from '@chatbox/common';
import type { ClientConnection } from '../ports/client-connection';
import {
  ConnectionRegistry,
  InProcessConnectionRegistry,
  Reservation,
  ReservationRefusal,
} from '../ports/connection-registry';
import { InstanceLiveness } from './instance-liveness';
import { RedisLink } from './redis-link';

/**
 * `MAX_CONNECTIONS_PER_USER` shared by every instance (SPEC 10); `MAX_CONNECTIONS` stays per
 * instance (SPEC 2) and the sockets themselves are tracked locally. The per-user hash
 * `<prefix>conn:<user>` holds one count per instance (`InstanceLiveness` counted hash): the counts of
 * a crashed instance stop counting once its liveness key expires (`INSTANCE_LIVENESS_TTL`), and each
 * heartbeat writes this instance's true counts (sockets closed while Redis was away stop counting
 * once it is back). While Redis cannot answer, the per-user limit is checked against this
 * instance's sockets only (logged once per outage).
 *
 * Note: the reserve script reads the liveness keys of the other instances, which Redis Cluster
 * only allows when they share a hash slot; use a hash-tagged `REDIS_KEY_PREFIX` (`{chatbox}:`) there.
 */
export class RedisConnectionRegistry extends ConnectionRegistry {
  /** The sockets of this instance (binding, lookups); only the reservations differ. */
  private readonly sockets: InProcessConnectionRegistry;
  private localReserved = 0;
  /** This instance's reservations per user (the limit while Redis cannot answer). */
  private readonly localPerUser = new Map<string, number>();

  constructor(
    private readonly appConfig: AppConfig,
    private readonly link: RedisLink,
    private readonly liveness: InstanceLiveness,
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

  isInstanceAlive(instanceId: string): Promise<boolean> {
    return this.liveness.isAlive(instanceId);
  }

  private get redis(): Redis {
    return this.link.commands as Redis;
  }

  async reserve(userId: string): Promise<Reservation | ReservationRefusal> {
    const { maxConnections, maxConnectionsPerUser } = this.appConfig.limits;
    if (this.localReserved >= maxConnections) return 'instance_limit';
    // Counted here first, so concurrent handshakes of this instance see each other.
    this.localReserved++;
    this.localPerUser.set(userId, (this.localPerUser.get(userId) ?? 0) + 1);
    const shared = await this.reserveShared(userId, maxConnectionsPerUser);
    const mine = this.localPerUser.get(userId) ?? 0;
    if (shared === 'refused' || (shared === 'local' && mine > maxConnectionsPerUser)) {
      this.forget(userId, false);
      return 'user_limit';
    }
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
    const allowed = await this.liveness.reserveCounted(this.userKey(userId), max);
    return allowed === undefined ? 'local' : allowed ? 'shared' : 'refused';
  }

  private forget(userId: string, shared: boolean): void {
    this.localReserved--;
    const mine = (this.localPerUser.get(userId) ?? 0) - 1;
    if (mine > 0) this.localPerUser.set(userId, mine);
    else this.localPerUser.delete(userId);
    if (shared) this.liveness.releaseCounted(this.userKey(userId));
  }

  private userKey(userId: string): string {
    return `${this.link.prefix}conn:${userId}`;
  }
}
