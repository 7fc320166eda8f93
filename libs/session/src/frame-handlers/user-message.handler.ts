import { Injectable } from '@nestjs/common';
import { ErrorCode } from '@chatbox/common';
import { MessageRateLimit } from '../message-rate-limit';
import { ClientConnection } from '../ports/client-connection';
import { SessionBroadcaster } from '../ports/session-broadcaster';
import { instant } from '../session-events';
import { SessionService } from '../session.service';
import { ActiveSession } from './active-session';
import { FrameHandler, FrameOf } from './frame-handler';
import { MessageTurn } from './message-turn';

/** `user_message`: stored, relayed to the session's other sockets, answered by the AI when it should. */
@Injectable()
export class UserMessageHandler extends FrameHandler<'user_message'> {
  readonly types = ['user_message'] as const;

  constructor(
    private readonly messageRate: MessageRateLimit,
    private readonly activeSession: ActiveSession,
    private readonly turn: MessageTurn,
    private readonly sessions: SessionService,
    private readonly broadcaster: SessionBroadcaster,
  ) {
    super();
  }

  async handle(connection: ClientConnection, frame: FrameOf<'user_message'>): Promise<void> {
    await this.messageRate.consume(connection.principal.userId);
    const session = await this.activeSession.of(connection);
    const isStaff = this.turn.isStaff(connection, session);
    const slot = await this.turn.slotFor(connection, session);

    // Stored in memory now and in the database in the background: the reply does not wait for it.
    const { message: stored, written } = await this.sessions
      .storeMessage(session, {
        type: 'user_message',
        content: frame.content,
        timestamp: new Date(),
        sender: this.turn.senderOf(connection, session),
        ...(frame.metadata && Object.keys(frame.metadata).length > 0 ? { meta: frame.metadata } : {}),
      })
      .catch((error: unknown) => {
        slot?.release();
        throw error;
      });
    this.broadcaster.toSession(
      session.id,
      {
        kind: 'messageRelayed',
        sessionId: session.id,
        messageId: stored.id,
        messageType: 'user_message',
        sender: stored.sender,
        content: stored.content,
        ...(isStaff ? { admin: { id: connection.principal.userId, name: connection.principal.name } } : {}),
        at: instant(stored.timestamp),
      },
      connection.id,
    );
    if (!slot) {
      void written.catch(() => sendStorageError(connection, session.id));
      return;
    }
    this.turn.answer(connection, session, stored, written, slot);
  }
}

/** A message that can never be stored (the database refused it for good): its sender is told. */
function sendStorageError(connection: ClientConnection, sessionId: string): void {
  connection.send({
    kind: 'failure',
    sessionId,
    code: ErrorCode.DATABASE_ERROR,
    message: 'Your message could not be saved',
    recoverable: true,
    at: instant(),
  });
}
