import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { ChatboxEvents, Principal } from '@chatbox/common';
import type { ClientConnection } from '@chatbox/session';
import { frameText, OutboundEvent } from './frame-mapper';

export const WS_OPEN = 1;
const MESSAGE_SENT = { type: 'message.sent', count: 1 } as const;

/** A `ws` socket seen through the session module's ClientConnection port. */
export class SocketConnection implements ClientConnection {
  readonly id = randomUUID();
  sessionId?: string;
  nextSessionId?: string;
  readonly deliveredSeq = new Map<string, number>();

  constructor(
    private readonly socket: WebSocket,
    readonly principal: Principal,
    private readonly maxBufferedBytes: number,
    private readonly events?: ChatboxEvents,
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
    this.socket.send(frameText(event));
    this.events?.emit(MESSAGE_SENT);
  }

  close(code: number, reason: string): void {
    if (this.socket.readyState === WS_OPEN) this.socket.close(code, reason);
  }
}
