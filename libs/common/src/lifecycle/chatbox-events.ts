import { Injectable } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';

/**
 * Typed domain events that observers (metrics) follow without the emitting modules knowing them.
 * Emitting never throws and never waits.
 */
export type ChatboxEvent =
  | { type: 'socket.opened' }
  | { type: 'socket.closed'; durationSeconds: number }
  | { type: 'message.received' }
  | { type: 'message.sent'; count: number }
  | { type: 'message.error' }
  | { type: 'ratelimit.blocked'; limiter: string }
  | { type: 'session.created' }
  | { type: 'session.ended' }
  | { type: 'takeover.started'; humanWaitSeconds?: number }
  /** Multi-instance mode: the Redis connection was lost or is back. */
  | { type: 'redis.availability'; available: boolean }
  /** A reply whose streaming instance is gone, ended as `interrupted` by this instance. */
  | { type: 'reply.orphan_closed' }
  /** Reply frames this instance had missed (pub/sub gap, Redis outage), fetched from the reply's stream. */
  | { type: 'reply.frames_recovered'; count: number };

@Injectable()
export class ChatboxEvents {
  private readonly subject = new Subject<ChatboxEvent>();
  readonly events$: Observable<ChatboxEvent> = this.subject.asObservable();

  emit(event: ChatboxEvent): void {
    this.subject.next(event);
  }
}
