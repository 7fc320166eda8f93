import { Injectable } from '@nestjs/common';
import { ClientConnection } from '../ports/client-connection';
import { SessionBroadcaster } from '../ports/session-broadcaster';
import { instant } from '../session-events';
import { SessionService } from '../session.service';
import { FrameHandler, FrameOf } from './frame-handler';

/** `typing_indicator`: relayed to the session's other sockets (an assisting admin's with its name). */
@Injectable()
export class TypingIndicatorHandler extends FrameHandler<'typing_indicator'> {
  readonly types = ['typing_indicator'] as const;

  constructor(
    private readonly sessions: SessionService,
    private readonly broadcaster: SessionBroadcaster,
  ) {
    super();
  }

  async handle(connection: ClientConnection, frame: FrameOf<'typing_indicator'>): Promise<void> {
    if (!connection.sessionId) return;
    const isStaff = connection.principal.isAdmin && !(await this.ownsBound(connection));
    this.broadcaster.toSession(
      connection.sessionId,
      {
        kind: 'typing',
        sessionId: connection.sessionId,
        typing: frame.metadata?.typing === 'true',
        ...(isStaff ? { adminName: connection.principal.name } : {}),
        at: instant(),
      },
      connection.id,
    );
  }

  private async ownsBound(connection: ClientConnection): Promise<boolean> {
    if (!connection.sessionId) return false;
    const session = await this.sessions.findSummary(connection.sessionId);
    return session?.userId === connection.principal.userId;
  }
}
