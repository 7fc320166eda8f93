import { Injectable, Logger } from '@nestjs/common';
import { AppConfig, DomainError, ErrorCode, InjectConfig, newSessionId } from '@chatbox/common';
import { LlmService } from '@chatbox/llm';
import { NotificationService } from '@chatbox/notification';
import { SessionRecord } from '@chatbox/storage';
import { chatEvent } from './chat-event';
import { FileMessageService } from './file-message.service';
import { InboundFrame, StreamResumeRequest } from './inbound-frame';
import { MessageRateLimit } from './message-rate-limit';
import { ClientConnection } from './ports/client-connection';
import { ConnectionRegistry } from './ports/connection-registry';
import { SessionBroadcaster } from './ports/session-broadcaster';
import { ReplyService } from './reply/reply.service';
import { SessionService, sessionEndedNotice } from './session.service';
import { TakeoverService } from './takeover.service';

const HELP_CONFIRMATION = 'Help request sent. An administrator will join your session shortly.';

/**
 * What happens for each client frame (SPEC 4.4–4.7). The gateway calls `handle` one frame at a time
 * per socket; errors are thrown as DomainError and mapped to `error` frames by the gateway, for the
 * causing socket only.
 */
@Injectable()
export class ChatService {
  private readonly logger = new Logger(ChatService.name);

  constructor(
    private readonly sessions: SessionService,
    private readonly replies: ReplyService,
    private readonly registry: ConnectionRegistry,
    private readonly broadcaster: SessionBroadcaster,
    private readonly messageRate: MessageRateLimit,
    private readonly llm: LlmService,
    private readonly takeover: TakeoverService,
    private readonly fileMessages: FileMessageService,
    private readonly notifications: NotificationService,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  /** Right after the upgrade: register, bind if the query named a bindable session, greet. */
  async connect(connection: ClientConnection, requestedSessionId?: string): Promise<void> {
    this.registry.add(connection);
    const session = await this.sessions.bindable(connection.principal, requestedSessionId);
    if (session) this.bind(connection, session);
    else connection.nextSessionId = newSessionId();
    connection.send(
      chatEvent('connection_status', 'system', {
        user_id: connection.principal.userId,
        session_id: session?.id ?? connection.nextSessionId,
        content: 'Connected',
        models: this.llm.models(),
        model_id: session?.modelId ?? this.llm.defaultModelId,
        ...(session?.assistingSince && session.assistingAdminName
          ? { metadata: { admin_name: session.assistingAdminName, admin_id: session.assistingAdminId ?? '' } }
          : {}),
        // [ext] The id is announced, not created yet: nothing to read or share under it before a message.
        ...(session ? {} : { metadata: { new_session: 'true' } }),
      }),
    );
    if (session) this.replies.catchUp(connection, session.id);
  }

  disconnect(connection: ClientConnection): void {
    const sessionId = connection.sessionId;
    this.registry.remove(connection);
    this.takeover.connectionClosed(connection, sessionId);
  }

  async handle(connection: ClientConnection, frame: InboundFrame): Promise<void> {
    if (frame.type === 'ping') {
      connection.send(chatEvent('pong', 'system', { session_id: connection.sessionId }));
      return;
    }
    await this.bindFromFrame(connection, frame);
    switch (frame.type) {
      case 'user_message':
        return this.userMessage(connection, frame);
      case 'model_select':
        return this.modelSelect(connection, frame);
      case 'help_request':
        return this.helpRequest(connection, frame);
      case 'typing_indicator':
        return this.typing(connection, frame);
      case 'stop_generation':
        return this.stopGeneration(connection);
      case 'stream_resume':
        return this.streamResume(connection, frame.resume);
      case 'end_session':
        return this.endSession(connection);
      case 'file_upload':
      case 'voice_message':
        return this.fileMessages.handle(connection, frame, () => this.activeSessionFor(connection));
      case 'admin_leave':
        if (!connection.principal.isAdmin)
          throw new DomainError(ErrorCode.INVALID_FORMAT, 'admin_leave is for admins');
        if (!connection.sessionId)
          throw new DomainError(ErrorCode.NOT_FOUND, 'You are not assisting this session');
        return this.takeover.leave(connection.principal, connection.sessionId, 'admin_leave');
    }
  }

  /**
   * A frame carrying a `session_id` binds an unbound socket when the caller may use that session.
   * An unknown, ended or foreign id changes nothing (answered like an unknown one: no leak).
   */
  private async bindFromFrame(connection: ClientConnection, frame: InboundFrame): Promise<void> {
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

  /** The bound session if still active; otherwise a new one (ending the user's previous one). */
  private async activeSessionFor(connection: ClientConnection): Promise<SessionRecord> {
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
      connection.send(
        chatEvent('notification', 'system', {
          session_id: bound.id,
          content: 'This conversation reached its size limit and continues in a new session.',
          metadata: { reason: 'message_limit' },
        }),
      );
    }
    // An ended session is read-only: the socket moves on to a new session (as "+ New Chat" would).
    const created = this.sessions.start(connection.principal.userId, { id: connection.nextSessionId });
    connection.nextSessionId = undefined;
    this.registry.bind(connection, created.id);
    return created;
  }

  private async userMessage(connection: ClientConnection, frame: InboundFrame): Promise<void> {
    if (frame.content === undefined || frame.content.trim() === '')
      throw new DomainError(ErrorCode.MISSING_FIELD, 'content is required for user_message');
    await this.messageRate.consume(connection.principal.userId);
    const session = await this.activeSessionFor(connection);
    const assistedByHuman = session.assistingSince !== undefined;
    const willReply = !assistedByHuman || this.config.llm.aiDuringTakeover;
    const isStaff = connection.principal.isAdmin && session.userId !== connection.principal.userId;
    // The reply's place is taken before the message is stored: a refused message is not stored.
    const slot = willReply && !isStaff ? await this.replies.takeSlot(session.id) : undefined;

    // Stored in memory now and in the database in the background: the reply does not wait for it.
    const { message: stored, written } = await this.sessions
      .storeMessage(session, {
        type: 'user_message',
        content: frame.content,
        timestamp: new Date(),
        sender: isStaff ? 'admin' : 'user',
        ...(frame.metadata && Object.keys(frame.metadata).length > 0 ? { meta: frame.metadata } : {}),
      })
      .catch((error: unknown) => {
        slot?.release();
        throw error;
      });
    this.broadcaster.toSession(
      session.id,
      chatEvent('user_message', stored.sender, {
        id: stored.id,
        session_id: session.id,
        content: stored.content,
        timestamp: stored.timestamp.toISOString(),
        metadata: isStaff
          ? { admin_name: connection.principal.name, admin_id: connection.principal.userId }
          : undefined,
      }),
      connection.id,
    );
    if (!slot) {
      void written.catch(() => this.sendStorageError(connection, session.id));
      return;
    }
    this.replies.enqueue(
      {
        sessionId: session.id,
        userId: session.userId,
        trigger: stored,
        triggerWritten: written,
        originConnectionId: connection.id,
      },
      slot,
    );
  }

  /** A message that can never be stored (the database refused it for good): its sender is told. */
  private sendStorageError(connection: ClientConnection, sessionId: string): void {
    connection.send(
      chatEvent('error', 'system', {
        session_id: sessionId,
        error: {
          code: ErrorCode.DATABASE_ERROR,
          message: 'Your message could not be saved',
          recoverable: true,
        },
      }),
    );
  }

  private async modelSelect(connection: ClientConnection, frame: InboundFrame): Promise<void> {
    if (!frame.model_id)
      throw new DomainError(ErrorCode.MISSING_FIELD, 'model_id is required for model_select');
    if (!this.llm.hasModel(frame.model_id))
      throw new DomainError(ErrorCode.INVALID_MODEL, `Unknown model ${frame.model_id}`);
    const session = await this.activeSessionFor(connection);
    await this.sessions.selectModel(session, frame.model_id);
    const answer = chatEvent('connection_status', 'system', {
      session_id: session.id,
      content: `Model changed to ${frame.model_id}`,
      model_id: frame.model_id,
    });
    connection.send(answer);
    this.broadcaster.toSession(session.id, answer, connection.id);
  }

  private async helpRequest(connection: ClientConnection, frame: InboundFrame): Promise<void> {
    const session = await this.activeSessionFor(connection);
    await this.sessions.markHelpRequested(session);
    // The excerpt is the request's own text, else the last user message (read only in that case).
    const excerpt = frame.content?.trim() ? frame.content : await this.sessions.lastUserMessage(session);
    // Alerts (e-mail, SMS, webhook, dashboards) are rate limited per session by the notification
    // module, so a repeated request within the window alerts nobody; the chat never waits on them.
    void this.notifications.helpRequested({
      userId: session.userId,
      sessionId: session.id,
      sessionName: session.name,
      lastUserMessage: excerpt,
      at: new Date(),
    });
    connection.send(
      chatEvent('connection_status', 'system', { session_id: session.id, content: HELP_CONFIRMATION }),
    );
  }

  private async typing(connection: ClientConnection, frame: InboundFrame): Promise<void> {
    if (!connection.sessionId) return;
    const typing = frame.metadata?.typing === 'true' ? 'true' : 'false';
    const isStaff = connection.principal.isAdmin && !(await this.ownsBound(connection));
    this.broadcaster.toSession(
      connection.sessionId,
      chatEvent('typing_indicator', isStaff ? 'admin' : 'user', {
        session_id: connection.sessionId,
        metadata: { typing, ...(isStaff ? { admin_name: connection.principal.name } : {}) },
      }),
      connection.id,
    );
  }

  private async ownsBound(connection: ClientConnection): Promise<boolean> {
    if (!connection.sessionId) return false;
    const session = await this.sessions.findSummary(connection.sessionId);
    return session?.userId === connection.principal.userId;
  }

  /** Answered by the reply's done frame (`stopped`), or by a notice when nothing is streaming. */
  private async stopGeneration(connection: ClientConnection): Promise<void> {
    if (!connection.sessionId) throw new DomainError(ErrorCode.NOT_FOUND, 'No session to stop');
    if (this.replies.stop(connection.sessionId)) return;
    connection.send(
      chatEvent('notification', 'system', {
        session_id: connection.sessionId,
        content: 'No reply is being generated.',
        metadata: { reason: 'nothing_to_stop' },
      }),
    );
  }

  /** The gateway checked `resume` (message id, last seq): only the session is looked at here. */
  private async streamResume(
    connection: ClientConnection,
    { messageId, lastSeq }: StreamResumeRequest,
  ): Promise<void> {
    if (!connection.sessionId) throw new DomainError(ErrorCode.NOT_FOUND, 'Session not found');
    if (!(await this.replies.resume(connection, connection.sessionId, messageId, lastSeq)))
      throw new DomainError(ErrorCode.NOT_FOUND, 'Reply not found');
  }

  /** Ending tells every socket of the session; ending an ended session answers the caller alike. */
  private async endSession(connection: ClientConnection): Promise<void> {
    if (!connection.sessionId) throw new DomainError(ErrorCode.NOT_FOUND, 'No session to end');
    if (!(await this.sessions.endOwned(connection.principal, connection.sessionId)))
      connection.send(sessionEndedNotice(connection.sessionId, 'user'));
  }
}
