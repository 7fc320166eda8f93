import { Injectable } from '@nestjs/common';
import { chatEvent } from '../chat-event';
import { ClientConnection } from '../ports/client-connection';
import { FrameHandler } from './frame-handler';

/** `ping` is answered at once and binds nothing. */
@Injectable()
export class PingHandler extends FrameHandler<'ping'> {
  readonly types = ['ping'] as const;
  override readonly bindsSession = false;

  async handle(connection: ClientConnection): Promise<void> {
    connection.send(chatEvent('pong', 'system', { session_id: connection.sessionId }));
  }
}
