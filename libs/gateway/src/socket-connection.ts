import { randomUUID } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import type { ChatboxEvents, Principal } from '@chatbox/common';
import type { ClientConnection } from '@chatbox/session';
import { frameText, OutboundEvent } from './frame-mapper';

export const WS_OPEN = 1;
const MESSAGE_SENT = { type: 'message.sent', count: 1 } as const;

/** The TCP socket under a `ws` socket: writes held back until the end of the current turn. */
export type CorkableTransport = Pick<Writable, 'cork' | 'uncork'>;

function uncorkTransport(connection: SocketConnection): void {
  connection.flush();
}

/** A `ws` socket seen through the session module's ClientConnection port. */
export class SocketConnection implements ClientConnection {
  readonly id = randomUUID();
  sessionId?: string;
  nextSessionId?: string;
  readonly deliveredSeq = new Map<string, number>();
  private corked = false;

  constructor(
    private readonly socket: WebSocket,
    readonly principal: Principal,
    private readonly maxBufferedBytes: number,
    private readonly events?: ChatboxEvents,
    private readonly transport?: CorkableTransport,
  ) {}

  get isOpen(): boolean {
    return this.socket.readyState === WS_OPEN;
  }

  /**
   * Writes the event's frame (frame-mapper.ts). Never writes to a socket that is closing; a client
   * that stops reading (send buffer over the bound) is closed instead of growing memory without limit.
   */
  send(event: OutboundEvent): void {
    if (!this.isOpen) return;
    if (this.socket.bufferedAmount > this.maxBufferedBytes) {
      this.close(1013, 'client too slow');
      return;
    }
    // Frames of one turn (several chunks read from the provider at once, a chunk and its done) leave
    // in one write: one system call instead of one per frame, the costliest step per chunk (issue 12).
    if (this.transport && !this.corked) {
      this.corked = true;
      this.transport.cork();
      process.nextTick(uncorkTransport, this);
    }
    this.socket.send(frameText(event));
    this.events?.emit(MESSAGE_SENT);
  }

  /** Writes what this turn's frames left in the transport (runs once per corked turn). */
  flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.transport?.uncork();
  }

  close(code: number, reason: string): void {
    if (this.socket.readyState === WS_OPEN) this.socket.close(code, reason);
  }
}
