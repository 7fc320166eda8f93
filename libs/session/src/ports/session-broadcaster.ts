import { Injectable } from '@nestjs/common';
import type { ReplyCheckpoint } from '@chatbox/storage';
import type { DashboardEvent, ReplyCatchUp, ReplyStreamEvent, SessionEvent } from '../session-events';
import type { ClientConnection } from './client-connection';
import { ConnectionRegistry } from './connection-registry';

/** A reply as it starts streaming: what another instance needs to store it if this one dies. */
export interface LiveReply {
  sessionId: string;
  messageId: string;
  userId: string;
  /** The reply's place among the session's messages (`seq` of the stored message). */
  position: number;
  modelId: string;
}

/** A reply whose streaming process is gone, to be stored as `interrupted`. */
export interface OrphanedReply {
  sessionId: string;
  messageId: string;
  /** The instance that streamed it. */
  owner: string;
  /** What it announced when it started (multi-instance mode), when still known. */
  live?: LiveReply;
  /** The whole text it had streamed (every frame from the first), when the reply buffer holds it. */
  text?: string;
  /** Its last checkpoint in the database, when the caller has it at hand. */
  checkpoint?: ReplyCheckpoint;
}

/**
 * Fan-out of session events. In-process it delivers to this instance's sockets; the Redis adapter
 * (multi-instance mode) publishes and every instance delivers to its own.
 */
export abstract class SessionBroadcaster {
  protected storeOrphan?: (orphan: OrphanedReply) => Promise<void>;

  /** To every socket bound to the session, except the one that caused the event. */
  abstract toSession(sessionId: string, event: SessionEvent, exceptConnectionId?: string): void;
  /** To admin dashboards (admin sockets bound to no session). */
  abstract toDashboards(event: DashboardEvent): void;

  /**
   * A frame of an AI reply streamed by this instance, already delivered to the local sockets (with
   * the `deliveredSeq` dedup): multi-instance mode buffers it for `stream_resume` and relays it to
   * the other instances. In-process there is nothing more to do.
   */
  replyFrame(_event: ReplyStreamEvent): void {
    // Single instance: the reply runner delivered it already.
  }

  /**
   * A reply starts streaming here (before its first frame). Multi-instance mode records it so that,
   * should this instance die, another one ends it. Single instance: nothing to record.
   */
  replyStarted(_reply: LiveReply): void {
    // Single instance: a restart recovers the reply from its checkpoint.
  }

  /**
   * Another instance ended a reply streaming here, taking this one for gone (it stalled longer than
   * the liveness TTL): the reply stops without a second done frame or a second stored message.
   */
  onReplyEndedElsewhere(_ended: (sessionId: string, messageId: string) => void): void {
    // Single instance: nobody else ends a reply.
  }

  /** How an orphaned reply is stored (`ReplyRecovery` registers it). */
  onOrphanedReply(store: (orphan: OrphanedReply) => Promise<void>): void {
    this.storeOrphan = store;
  }

  /**
   * Ends a reply whose streaming process is gone: stored as interrupted and, in multi-instance mode,
   * a done frame to every socket of the session on every instance (once, whoever calls it).
   */
  async endOrphanedReply(orphan: OrphanedReply): Promise<void> {
    await this.storeOrphan?.(orphan);
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

/** `deliveredSeq` of a reply whose done frame the socket has had: nothing more of it is sent. */
const REPLY_ENDED = Number.MAX_SAFE_INTEGER;

/**
 * Sends a reply frame unless the socket already had its `seq` (resume, catch-up, other path). A
 * done frame is sent once in any case: a socket may have had frames past it (the streaming instance
 * died before its last frames reached the reply buffer, and another instance ended the reply after
 * the last buffered one); after it, nothing more of the reply is sent.
 */
export function deliverReplyFrameOnce(
  connection: ClientConnection,
  event: ReplyStreamEvent | ReplyCatchUp,
): void {
  const { messageId, seq } = event;
  const delivered = connection.deliveredSeq.get(messageId) ?? -1;
  const done = event.kind === 'replyDone';
  if (done ? delivered === REPLY_ENDED : delivered >= seq) return;
  connection.deliveredSeq.set(messageId, done ? REPLY_ENDED : seq);
  connection.send(event);
}

function isLeavingAdmin(connection: ClientConnection, event: SessionEvent): boolean {
  return (
    event.kind === 'adminLeft' &&
    connection.principal.isAdmin &&
    connection.principal.userId === event.admin.id
  );
}

@Injectable()
export class InProcessSessionBroadcaster extends SessionBroadcaster {
  constructor(private readonly registry: ConnectionRegistry) {
    super();
  }

  /**
   * Also where a takeover ends for the admin's sockets, on every instance: a socket of the admin
   * named by an `AdminLeft` event gets it, then is unbound and hears nothing more of the session.
   */
  toSession(sessionId: string, event: SessionEvent, exceptConnectionId?: string): void {
    for (const connection of this.registry.connectionsOf(sessionId)) {
      if (connection.id !== exceptConnectionId) connection.send(event);
      if (isLeavingAdmin(connection, event)) this.registry.bind(connection, undefined);
    }
  }

  toDashboards(event: DashboardEvent): void {
    for (const connection of this.registry.dashboards()) connection.send(event);
  }
}
