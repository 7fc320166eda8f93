import { Injectable } from '@nestjs/common';
import type { ChatEvent } from '../chat-event';
import { ConnectionRegistry } from './connection-registry';

/**
 * Fan-out of session events. In-process it delivers to this instance's sockets; the Redis adapter
 * (multi-instance mode) publishes and every instance delivers to its own.
 */
export abstract class SessionBroadcaster {
  /** To every socket bound to the session, except the one that caused the event. */
  abstract toSession(sessionId: string, event: ChatEvent, exceptConnectionId?: string): void;
  /** To admin dashboards (admin sockets bound to no session). */
  abstract toDashboards(event: ChatEvent): void;
}

@Injectable()
export class InProcessSessionBroadcaster extends SessionBroadcaster {
  constructor(private readonly registry: ConnectionRegistry) {
    super();
  }

  toSession(sessionId: string, event: ChatEvent, exceptConnectionId?: string): void {
    for (const connection of this.registry.connectionsOf(sessionId)) {
      if (connection.id !== exceptConnectionId) connection.send(event);
    }
  }

  toDashboards(event: ChatEvent): void {
    for (const connection of this.registry.dashboards()) connection.send(event);
  }
}
