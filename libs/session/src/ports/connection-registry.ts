import { Injectable } from '@nestjs/common';
import { AppConfig, InjectConfig } from '@chatbox/common';
import type { ClientConnection } from './client-connection';

export type ReservationRefusal = 'instance_limit' | 'user_limit';

/** A connection slot taken before the WebSocket upgrade; released if the upgrade never completes. */
export interface Reservation {
  readonly userId: string;
  release(): void;
}

/**
 * Who is connected where. The in-process implementation below serves one instance; a Redis
 * implementation (multi-instance mode) keeps the per-user counts shared.
 */
export abstract class ConnectionRegistry {
  /** Asynchronous in multi-instance mode (the per-user count lives in Redis): callers `await` it. */
  abstract reserve(
    userId: string,
  ): Reservation | ReservationRefusal | Promise<Reservation | ReservationRefusal>;
  abstract add(connection: ClientConnection): void;
  abstract remove(connection: ClientConnection): void;
  abstract bind(connection: ClientConnection, sessionId: string | undefined): void;
  abstract connectionsOf(sessionId: string): ClientConnection[];
  abstract dashboards(): ClientConnection[];
  abstract all(): ClientConnection[];
  abstract get size(): number;

  /** Whether the user has a socket on the session (multi-instance: or any live socket elsewhere). */
  abstract isSessionUserConnected(sessionId: string, userId: string): boolean | Promise<boolean>;

  /** Whether another instance is alive (its replies are its own); none exists in one process. */
  abstract isInstanceAlive(instanceId: string): boolean | Promise<boolean>;
}

@Injectable()
export class InProcessConnectionRegistry extends ConnectionRegistry {
  private reserved = 0;
  private readonly perUser = new Map<string, number>();
  private readonly connections = new Set<ClientConnection>();
  private readonly bySession = new Map<string, Set<ClientConnection>>();
  /** Admin sockets bound to no session (dashboards): every session change is sent to them. */
  private readonly unboundAdmins = new Set<ClientConnection>();

  constructor(@InjectConfig() private readonly config: AppConfig) {
    super();
  }

  reserve(userId: string): Reservation | ReservationRefusal {
    if (this.reserved >= this.config.limits.maxConnections) return 'instance_limit';
    const current = this.perUser.get(userId) ?? 0;
    if (current >= this.config.limits.maxConnectionsPerUser) return 'user_limit';
    this.reserved++;
    this.perUser.set(userId, current + 1);
    let released = false;
    return {
      userId,
      release: () => {
        if (released) return;
        released = true;
        this.reserved--;
        const left = (this.perUser.get(userId) ?? 1) - 1;
        if (left <= 0) this.perUser.delete(userId);
        else this.perUser.set(userId, left);
      },
    };
  }

  add(connection: ClientConnection): void {
    this.connections.add(connection);
    if (connection.principal.isAdmin && !connection.sessionId) this.unboundAdmins.add(connection);
  }

  remove(connection: ClientConnection): void {
    this.bind(connection, undefined);
    this.connections.delete(connection);
    this.unboundAdmins.delete(connection);
  }

  bind(connection: ClientConnection, sessionId: string | undefined): void {
    if (connection.sessionId) {
      const sockets = this.bySession.get(connection.sessionId);
      sockets?.delete(connection);
      if (sockets?.size === 0) this.bySession.delete(connection.sessionId);
    }
    connection.sessionId = sessionId;
    if (connection.principal.isAdmin && !sessionId && this.connections.has(connection))
      this.unboundAdmins.add(connection);
    else this.unboundAdmins.delete(connection);
    connection.deliveredSeq.clear();
    if (!sessionId) return;
    const sockets = this.bySession.get(sessionId) ?? new Set<ClientConnection>();
    sockets.add(connection);
    this.bySession.set(sessionId, sockets);
  }

  connectionsOf(sessionId: string): ClientConnection[] {
    return [...(this.bySession.get(sessionId) ?? [])];
  }

  dashboards(): ClientConnection[] {
    return [...this.unboundAdmins];
  }

  all(): ClientConnection[] {
    return [...this.connections];
  }

  get size(): number {
    return this.connections.size;
  }

  isSessionUserConnected(sessionId: string, userId: string): boolean {
    return this.connectionsOf(sessionId).some((connection) => connection.principal.userId === userId);
  }

  isInstanceAlive(): boolean {
    return false;
  }
}
