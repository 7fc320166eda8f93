import { randomBytes } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import {
  AppConfig,
  ChatboxEvents,
  DomainError,
  ErrorCode,
  InjectConfig,
  Principal,
  newMessageId,
} from '@chatbox/common';
import { LlmService } from '@chatbox/llm';
import { SessionRecord, SessionRepository, StoredMessage } from '@chatbox/storage';
import { chatEvent } from './chat-event';
import { SessionBroadcaster } from './ports/session-broadcaster';
import { sessionNameFrom } from './session-name';

const SHARE_TOKEN_BYTES = 24;

export type SessionEndReason = 'user' | 'idle' | 'new_session' | 'message_limit' | 'admin';

/** What a session's sockets are told when it ends (also the answer to ending an ended session). */
export function sessionEndedNotice(sessionId: string, reason: SessionEndReason) {
  return chatEvent('notification', 'system', {
    session_id: sessionId,
    content: 'This conversation has ended.',
    metadata: {
      reason: reason === 'new_session' ? 'session_ended_elsewhere' : 'session_ended',
      event: 'session_ended',
    },
  });
}

/** Session rules: ownership, one active session per user, naming, ending, sharing. */
@Injectable()
export class SessionService {
  private readonly logger = new Logger(SessionService.name);

  constructor(
    private readonly sessions: SessionRepository,
    private readonly broadcaster: SessionBroadcaster,
    private readonly llm: LlmService,
    private readonly events: ChatboxEvents,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  /**
   * The session a socket may bind to: the caller's own active session, or one the caller assists as
   * admin. Unknown, ended and foreign ids answer the same: undefined (a foreign id never leaks).
   */
  async bindable(principal: Principal, sessionId: string | undefined): Promise<SessionRecord | undefined> {
    if (!sessionId) return undefined;
    const session = await this.sessions.findSummary(sessionId);
    if (!session || session.endedAt) return undefined;
    if (session.userId === principal.userId) return session;
    if (principal.isAdmin && session.assistingSince && session.assistingAdminId === principal.userId)
      return session;
    return undefined;
  }

  /** Readable history: the owner (until they delete it), or any admin (SPEC 5). Others get NOT_FOUND. */
  async readable(principal: Principal, sessionId: string): Promise<SessionRecord> {
    const session = await this.sessions.findById(sessionId);
    if (!session || (!principal.isAdmin && (session.userId !== principal.userId || session.hiddenAt)))
      throw new DomainError(ErrorCode.NOT_FOUND, 'Session not found');
    return session;
  }

  /** Owner-only actions (end, share, rename): admins are refused on someone else's session too. */
  async owned(principal: Principal, sessionId: string): Promise<SessionRecord> {
    const session = await this.sessions.findSummary(sessionId);
    if (!session || session.userId !== principal.userId || session.hiddenAt)
      throw new DomainError(ErrorCode.NOT_FOUND, 'Session not found');
    return session;
  }

  /** The owner names the session (validated by the caller); stored encrypted like the automatic name. */
  async rename(principal: Principal, sessionId: string, name: string): Promise<void> {
    await this.owned(principal, sessionId);
    await this.sessions.rename(sessionId, name);
  }

  /**
   * The owner deletes the session from their list ([ext], docs/decisions/0006): it is ended, its
   * share link revoked and it is hidden from the owner; admins keep it (support history, metrics).
   * Repeating it is a no-op.
   */
  async deleteForOwner(principal: Principal, sessionId: string): Promise<void> {
    const session = await this.sessions.findSummary(sessionId);
    if (!session || session.userId !== principal.userId)
      throw new DomainError(ErrorCode.NOT_FOUND, 'Session not found');
    if (session.hiddenAt) return;
    if (!session.endedAt) await this.end(sessionId, 'user');
    await this.sessions.hideFromOwner(sessionId);
  }

  /** Starts a new session for the user, ending the previous active one (one active session per user). */
  async start(
    userId: string,
    options: { modelId?: string; helpRequested?: boolean } = {},
  ): Promise<SessionRecord> {
    for (const previousId of await this.sessions.findActiveIdsByUser(userId)) {
      await this.end(previousId, 'new_session');
    }
    const session = await this.sessions.create({
      userId,
      modelId: options.modelId,
      helpRequested: options.helpRequested,
    });
    this.events.emit({ type: 'session.created' });
    this.broadcaster.toDashboards(
      chatEvent('notification', 'system', {
        session_id: session.id,
        metadata: { event: 'session_started', user_id: userId },
      }),
    );
    return session;
  }

  /** Ends a session once (idempotent); its sockets are told, dashboards updated. */
  async end(sessionId: string, reason: SessionEndReason): Promise<SessionRecord | undefined> {
    const ended = await this.sessions.end(sessionId);
    if (!ended) return undefined;
    this.events.emit({ type: 'session.ended' });
    this.logger.log({ sessionId, reason }, 'session ended');
    this.broadcaster.toSession(sessionId, sessionEndedNotice(sessionId, reason));
    this.broadcaster.toDashboards(
      chatEvent('notification', 'system', {
        session_id: sessionId,
        metadata: { event: 'session_ended', user_id: ended.userId },
      }),
    );
    return ended;
  }

  /** Ends the caller's session; false when it had already ended (idempotent). */
  async endOwned(principal: Principal, sessionId: string): Promise<boolean> {
    const session = await this.owned(principal, sessionId);
    if (session.endedAt) return false;
    return (await this.end(sessionId, 'user')) !== undefined;
  }

  async storeMessage(
    session: SessionRecord,
    message: Omit<StoredMessage, 'id'> & { id?: string },
  ): Promise<StoredMessage> {
    const stored: StoredMessage = { ...message, id: message.id ?? newMessageId() };
    const result = await this.sessions.pushMessage(session.id, stored);
    if (result === 'missing') throw new DomainError(ErrorCode.NOT_FOUND, 'Session not found');
    if (
      stored.sender === 'user' &&
      stored.type === 'user_message' &&
      !session.name &&
      stored.content.trim() !== ''
    ) {
      const name = sessionNameFrom(stored.content, this.config.protocol.sessionNameChars);
      if (await this.sessions.nameIfUnnamed(session.id, name)) session.name = name;
    }
    return stored;
  }

  async selectModel(session: SessionRecord, modelId: string): Promise<void> {
    if (!this.llm.hasModel(modelId))
      throw new DomainError(ErrorCode.INVALID_MODEL, `Unknown model ${modelId}`);
    await this.sessions.setFields(session.id, { modelId });
    session.modelId = modelId;
  }

  /**
   * Marks help requested and opens the help queue entry; returns true when this is a new request
   * (not a repeat while one is open or an admin assists; a resolved request opens again).
   */
  async markHelpRequested(session: SessionRecord): Promise<boolean> {
    const at = new Date();
    const updated = await this.sessions.updateIf(
      session.id,
      { helpState: { $nin: ['open', 'assisted'] }, assistingSince: { $exists: false } },
      { $set: { helpRequested: true, helpRequestedAt: at, helpState: 'open' } },
    );
    session.helpRequested = true;
    if (!updated) return false;
    session.helpRequestedAt = at;
    session.helpState = 'open';
    return true;
  }

  async share(principal: Principal, sessionId: string): Promise<{ shareToken: string }> {
    const session = await this.owned(principal, sessionId);
    const expiresAt = this.config.storage.shareLinkTtlMs
      ? new Date(Date.now() + this.config.storage.shareLinkTtlMs)
      : undefined;
    if (session.shareToken && (!session.shareExpiresAt || session.shareExpiresAt > new Date()))
      return { shareToken: session.shareToken };
    const shareToken = randomBytes(SHARE_TOKEN_BYTES).toString('base64url');
    // Only set when still unshared: two concurrent share calls agree on one token.
    const updated = await this.sessions.updateIf(
      sessionId,
      session.shareToken ? { shareToken: session.shareToken } : { shareToken: { $exists: false } },
      { $set: { shareToken, ...(expiresAt ? { shareExpiresAt: expiresAt } : {}) } },
    );
    if (updated?.shareToken) return { shareToken: updated.shareToken };
    const current = await this.owned(principal, sessionId);
    if (!current.shareToken)
      throw new DomainError(ErrorCode.CONFLICT, 'Share link changed concurrently; retry');
    return { shareToken: current.shareToken };
  }

  async unshare(principal: Principal, sessionId: string): Promise<void> {
    await this.owned(principal, sessionId);
    await this.sessions.updateIf(sessionId, {}, { $unset: { shareToken: '', shareExpiresAt: '' } });
  }

  async shared(token: string): Promise<SessionRecord> {
    const session = await this.sessions.findByShareToken(token);
    if (!session || (session.shareExpiresAt && session.shareExpiresAt <= new Date()))
      throw new DomainError(ErrorCode.NOT_FOUND, 'Shared conversation not found');
    return session;
  }

  async listForUser(userId: string): Promise<{ sessions: SessionRecord[]; total: number; limit: number }> {
    const limit = this.config.protocol.sessionListLimit;
    const { sessions, total } = await this.sessions.listByUser(userId, limit);
    return { sessions, total, limit };
  }

  async findById(sessionId: string): Promise<SessionRecord | undefined> {
    return this.sessions.findById(sessionId);
  }

  /** Without messages: for checks that need only the session's fields. */
  async findSummary(sessionId: string): Promise<SessionRecord | undefined> {
    return this.sessions.findSummary(sessionId);
  }
}
