import type { Principal } from '@chatbox/common';
import type { SessionEvent } from '../session-events';

/** What the session module knows of a socket: who it is, which session it serves, how to reach it. */
export interface ClientConnection {
  readonly id: string;
  readonly principal: Principal;
  /** The session this socket is bound to (one at a time). */
  sessionId?: string;
  /**
   * The id this socket's next new session takes, announced on `connection_status` so that clients
   * can adopt it at once (as clients of the earlier service do); nothing is stored until it is used.
   */
  nextSessionId?: string;
  /** The gateway renders the event as a frame (SPEC 4.2) and writes it. */
  send(event: SessionEvent): void;
  close(code: number, reason: string): void;
  /** Highest `seq` of the active reply already delivered to this socket (avoids duplicates on resume). */
  deliveredSeq: Map<string, number>;
}
