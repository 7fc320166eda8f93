import { Injectable } from '@nestjs/common';
import { AppConfig, InjectConfig } from '@chatbox/common';
import { SessionRecord, StoredMessage } from '@chatbox/storage';
import { ClientConnection } from '../ports/client-connection';
import { ReplyService, ReplySlot } from '../reply/reply.service';

/**
 * What a message written into a session sets in motion, alike for text, file and voice messages: who
 * wrote it (the session's user, or an admin assisting it), whether the AI answers, and the answer.
 */
@Injectable()
export class MessageTurn {
  constructor(
    private readonly replies: ReplyService,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  /** An admin writing into someone else's session: stored as `admin`, never answered by the AI. */
  isStaff(connection: ClientConnection, session: SessionRecord): boolean {
    return connection.principal.isAdmin && session.userId !== connection.principal.userId;
  }

  senderOf(connection: ClientConnection, session: SessionRecord): 'admin' | 'user' {
    return this.isStaff(connection, session) ? 'admin' : 'user';
  }

  /**
   * The reply's place when the AI answers (not staff; during a human takeover only with
   * AI_DURING_TAKEOVER), taken before the message is stored: a refused message (SERVICE_BUSY) is not
   * stored. Undefined when no reply follows.
   */
  async slotFor(connection: ClientConnection, session: SessionRecord): Promise<ReplySlot | undefined> {
    const assistedByHuman = session.assistingSince !== undefined;
    const willReply = !assistedByHuman || this.config.llm.aiDuringTakeover;
    return willReply && !this.isStaff(connection, session) ? this.replies.takeSlot(session.id) : undefined;
  }

  /** Queues the AI's answer to `trigger` in the place `slot` holds; errors go to `connection` alone. */
  answer(
    connection: ClientConnection,
    session: SessionRecord,
    trigger: StoredMessage,
    triggerWritten: Promise<void>,
    slot: ReplySlot,
  ): void {
    this.replies.enqueue(
      {
        sessionId: session.id,
        userId: session.userId,
        trigger,
        triggerWritten,
        originConnectionId: connection.id,
      },
      slot,
    );
  }
}
