import { Injectable } from '@nestjs/common';
import { newSessionId } from '@chatbox/common';
import { SessionRecord } from '@chatbox/storage';
import { InboundFrame } from './inbound-frame';
import { ClientConnection } from './ports/client-connection';
import { ConnectionRegistry } from './ports/connection-registry';
import { ReplyService } from './reply/reply.service';
import { SessionService } from './session.service';
import { TakeoverService } from './takeover.service';

/** Which session a socket is bound to, from the upgrade to the close. */
@Injectable()
export class SocketBinding {
  constructor(
    private readonly sessions: SessionService,
    private readonly registry: ConnectionRegistry,
    private readonly takeover: TakeoverService,
    private readonly replies: ReplyService,
  ) {}

  /**
   * Registers the socket and binds it if the query named a bindable session (returned); otherwise
   * announces the id its first message will create.
   */
  async open(connection: ClientConnection, requestedSessionId?: string): Promise<SessionRecord | undefined> {
    this.registry.add(connection);
    const session = await this.sessions.bindable(connection.principal, requestedSessionId);
    if (session) this.bind(connection, session);
    else connection.nextSessionId = newSessionId();
    return session;
  }

  close(connection: ClientConnection): void {
    const sessionId = connection.sessionId;
    this.registry.remove(connection);
    this.takeover.connectionClosed(connection, sessionId);
  }

  /**
   * A frame carrying a `session_id` binds an unbound socket when the caller may use that session.
   * An unknown, ended or foreign id changes nothing (answered like an unknown one: no leak).
   */
  async bindFromFrame(connection: ClientConnection, frame: InboundFrame): Promise<void> {
    if (!frame.session_id || frame.session_id === connection.sessionId) return;
    // The announced id of a session not created yet: the first message creates it under that id.
    if (frame.session_id === connection.nextSessionId) return;
    const session = await this.sessions.bindable(connection.principal, frame.session_id);
    if (!session) return;
    this.bind(connection, session);
    // A resuming socket asks for exactly what it missed: no catch-up on top of the replay.
    if (frame.type !== 'stream_resume') this.replies.catchUp(connection, session.id);
  }

  private bind(connection: ClientConnection, session: SessionRecord): void {
    this.registry.bind(connection, session.id);
    this.takeover.adminBound(connection, session);
  }
}
