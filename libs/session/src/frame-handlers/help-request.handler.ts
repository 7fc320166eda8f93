import { Injectable } from '@nestjs/common';
import { NotificationService } from '@chatbox/notification';
import { ClientConnection } from '../ports/client-connection';
import { instant } from '../session-events';
import { SessionService } from '../session.service';
import { ActiveSession } from './active-session';
import { FrameHandler, FrameOf } from './frame-handler';

/** `help_request`: the session joins the help queue and admins are alerted. */
@Injectable()
export class HelpRequestHandler extends FrameHandler<'help_request'> {
  readonly types = ['help_request'] as const;

  constructor(
    private readonly activeSession: ActiveSession,
    private readonly sessions: SessionService,
    private readonly notifications: NotificationService,
  ) {
    super();
  }

  async handle(connection: ClientConnection, frame: FrameOf<'help_request'>): Promise<void> {
    const session = await this.activeSession.of(connection);
    const newRequest = await this.sessions.markHelpRequested(session);
    // The excerpt is the request's own text, else the last user message (read only in that case).
    const excerpt = frame.content?.trim() ? frame.content : await this.sessions.lastUserMessage(session);
    // Alerts (e-mail, SMS, webhook) are rate limited per session by the notification module, so a
    // repeated request within the window alerts nobody; a new one (also after a resolve) always
    // reaches the open dashboards' help queue. The chat never waits on them.
    void this.notifications.helpRequested({
      userId: session.userId,
      sessionId: session.id,
      sessionName: session.name,
      lastUserMessage: excerpt,
      at: new Date(),
      newRequest,
    });
    connection.send({ kind: 'helpRequestSent', sessionId: session.id, at: instant() });
  }
}
