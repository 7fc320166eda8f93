import { Injectable } from '@nestjs/common';
import { ClientConnection } from '../ports/client-connection';
import { instant } from '../session-events';
import { FrameHandler } from './frame-handler';

/** `ping` is answered at once and binds nothing. */
@Injectable()
export class PingHandler extends FrameHandler<'ping'> {
  readonly types = ['ping'] as const;
  override readonly bindsSession = false;

  async handle(connection: ClientConnection): Promise<void> {
    connection.send({ kind: 'pong', sessionId: connection.sessionId, at: instant() });
  }
}
