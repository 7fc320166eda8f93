import { Injectable } from '@nestjs/common';
import type { ChatEvent } from '../chat-event';
import type { ClientConnection } from './client-connection';
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

  /**
   * A frame of an AI reply streamed by this instance, already delivered to the local sockets (with
   * the `deliveredSeq` dedup): multi-instance mode buffers it for `stream_resume` and relays it to
   * the other instances. In-process there is nothing more to do.
   */
  replyFrame(_sessionId: string, _messageId: string, _seq: number, _frame: ChatEvent): void {
    // Single instance: the reply runner delivered it already.
  }

  /**
   * `stop_generation` for a reply that is not streaming here: asks the instance that streams it.
   * Returns whether a reply of the session is known to stream elsewhere (its done frame will answer).
   * Single instance: there is no other instance to ask.
   */
  requestStop(_sessionId: string): boolean {
    return false;
  }

  /**
   * Another instance changed a session (a frame for it arrived from there): what this process holds
   * of it is read again. Single instance: every change is local.
   */
  onRemoteChange(_changed: (sessionId: string) => void): void {
    // Single instance: nothing changes elsewhere.
  }

  /** The reply runner registers how a stop requested by another instance reaches a local reply. */
  onStopRequest(_stopLocalReply: (sessionId: string) => void): void {
    // Single instance: stop requests never arrive from elsewhere.
  }

  /**
   * `stream_resume` of a reply streamed by another instance: replays the frames after `lastSeq`
   * and lets the live ones follow. False when no such reply is streaming anywhere.
   */
  resumeRemote(
    _connection: ClientConnection,
    _sessionId: string,
    _messageId: string,
    _lastSeq: number,
  ): Promise<boolean> {
    return Promise.resolve(false);
  }
}

/** Sends a reply frame unless the socket already had this `seq` (resume, catch-up, other path). */
export function deliverReplyFrameOnce(
  connection: ClientConnection,
  messageId: string,
  seq: number,
  frame: ChatEvent,
): void {
  if ((connection.deliveredSeq.get(messageId) ?? -1) >= seq) return;
  connection.deliveredSeq.set(messageId, seq);
  connection.send(frame);
}

function isLeavingAdmin(connection: ClientConnection, event: ChatEvent): boolean {
  return (
    event.type === 'admin_leave' &&
    connection.principal.isAdmin &&
    connection.principal.userId === event.metadata?.admin_id
  );
}

@Injectable()
export class InProcessSessionBroadcaster extends SessionBroadcaster {
  constructor(private readonly registry: ConnectionRegistry) {
    super();
  }

  /**
   * Also where a takeover ends for the admin's sockets, on every instance: a socket of the admin
   * named by an `admin_leave` gets that frame, then is unbound and hears nothing more of the session.
   */
  toSession(sessionId: string, event: ChatEvent, exceptConnectionId?: string): void {
    for (const connection of this.registry.connectionsOf(sessionId)) {
      if (connection.id !== exceptConnectionId) connection.send(event);
      if (isLeavingAdmin(connection, event)) this.registry.bind(connection, undefined);
    }
  }

  toDashboards(event: ChatEvent): void {
    for (const connection of this.registry.dashboards()) connection.send(event);
  }
}
