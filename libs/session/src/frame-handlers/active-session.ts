import { Injectable } from '@nestjs/common';
import { AppConfig, DomainError, ErrorCode, InjectConfig } from '@chatbox/common';
import { SessionRecord } from '@chatbox/storage';
import { ClientConnection } from '../ports/client-connection';
import { ConnectionRegistry } from '../ports/connection-registry';
import { instant } from '../session-events';
import { SessionService } from '../session.service';

/** The session a socket writes to (messages, files, a model choice, a help request). */
@Injectable()
export class ActiveSession {
  constructor(
    private readonly sessions: SessionService,
    private readonly registry: ConnectionRegistry,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  /** The bound session if still active; otherwise a new one (ending the user's previous one). */
  async of(connection: ClientConnection): Promise<SessionRecord> {
    const bound = connection.sessionId ? await this.sessions.findSummary(connection.sessionId) : undefined;
    if (bound && connection.principal.isAdmin && bound.userId !== connection.principal.userId) {
      // An admin socket bound to someone else's session writes there only while assisting it.
      if (bound.endedAt) throw new DomainError(ErrorCode.SESSION_ENDED, 'This session has ended');
      if (!bound.assistingSince || bound.assistingAdminId !== connection.principal.userId)
        throw new DomainError(ErrorCode.NOT_FOUND, 'You are not assisting this session');
      return bound;
    }
    if (bound && !bound.endedAt) {
      if (bound.messageCount < this.config.protocol.messagesPerSession) return bound;
      await this.sessions.end(bound.id, 'message_limit');
      connection.send({ kind: 'sessionRolledOver', sessionId: bound.id, at: instant() });
    }
    // An ended session is read-only: the socket moves on to a new session (as "+ New Chat" would).
    const created = this.sessions.start(connection.principal.userId, { id: connection.nextSessionId });
    connection.nextSessionId = undefined;
    this.registry.bind(connection, created.id);
    return created;
  }
}
