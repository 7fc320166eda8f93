import { Injectable } from '@nestjs/common';
import { DomainError, ErrorCode } from '@chatbox/common';
import { ClientConnection } from '../ports/client-connection';
import { SessionService, sessionEnded } from '../session.service';
import { FrameHandler } from './frame-handler';

/** `end_session`: tells every socket of the session; ending an ended session answers the caller alike. */
@Injectable()
export class EndSessionHandler extends FrameHandler<'end_session'> {
  readonly types = ['end_session'] as const;

  constructor(private readonly sessions: SessionService) {
    super();
  }

  async handle(connection: ClientConnection): Promise<void> {
    if (!connection.sessionId) throw new DomainError(ErrorCode.NOT_FOUND, 'No session to end');
    if (!(await this.sessions.endOwned(connection.principal, connection.sessionId)))
      connection.send(sessionEnded(connection.sessionId, 'user'));
  }
}
