import { randomBytes } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { AppConfig, ChatboxEvents, DomainError, ErrorCode, InjectConfig, Principal } from '@chatbox/common';
import { FileUrlSigner } from '@chatbox/files';
import { LlmService } from '@chatbox/llm';
import {
  AppendedMessage,
  ConversationStore,
  MessageCounters,
  MessageDraft,
  SessionRecord,
  SessionRepository,
  StoredMessage,
} from '@chatbox/storage';
import { ReplyLock } from './ports/reply-lock';
import { SessionBroadcaster } from './ports/session-broadcaster';
import { DashboardChange, instant, SessionEnded } from './session-events';
import { settledWithin } from './settled-within';
import { sessionNameFrom } from './session-name';
import { SessionDetail, SharedSessionView, toSessionDetail, toSharedView } from './session-views';

const SHARE_TOKEN_BYTES = 24;
/**
 * Lookups of a session another instance is still writing (see `findEvenIfWrittenElsewhere`): the
 * first after this long, then twice as long each time, up to the maximum.
 */
const WRITTEN_ELSEWHERE_FIRST_POLL_MS = 25;
const WRITTEN_ELSEWHERE_MAX_POLL_MS = 400;

export type SessionEndReason = 'user' | 'idle' | 'new_session' | 'message_limit' | 'admin';

/** What a session's sockets are told when it ends (also the answer to ending an ended session). */
export function sessionEnded(sessionId: string, reason: SessionEndReason): SessionEnded {
  return { kind: 'sessionEnded', sessionId, elsewhere: reason === 'new_session', at: instant() };
}

/** A session with its whole history, for the REST views. */
export interface SessionWithHistory {
  session: SessionRecord;
  messages: StoredMessage[];
}

/** Session rules: ownership, one active session per user, naming, ending, sharing. */
@Injectable()
export class SessionService {
  private readonly logger = new Logger(SessionService.name);

  constructor(
    private readonly store: ConversationStore,
    private readonly repository: SessionRepository,
    private readonly broadcaster: SessionBroadcaster,
    private readonly llm: LlmService,
    private readonly fileUrls: FileUrlSigner,
    private readonly events: ChatboxEvents,
    @InjectConfig() private readonly config: AppConfig,
    private readonly lock: ReplyLock,
  ) {
    this.store.onEndedElsewhere((sessionIds, userId) => {
      for (const sessionId of sessionIds) this.announceEnd(sessionId, userId, 'new_session');
    });
    this.broadcaster.onRemoteChange((sessionId) => this.store.invalidate(sessionId));
  }

  /**
   * The session a socket may bind to: the caller's own active session, or one the caller assists as
   * admin. Unknown, ended and foreign ids answer the same: undefined (a foreign id never leaks).
   */
  async bindable(principal: Principal, sessionId: string | undefined): Promise<SessionRecord | undefined> {
    if (!sessionId) return undefined;
    const session = await this.findEvenIfWrittenElsewhere(sessionId);
    if (!session || session.endedAt) return undefined;
    if (session.userId === principal.userId) return session;
    if (principal.isAdmin && session.assistingSince && session.assistingAdminId === principal.userId)
      return session;
    return undefined;
  }

  /**
   * A session by id, also one another instance has just created (SPEC 10: no sticky sessions). That
   * instance answers the first message before the session's insert lands (issue 12) and holds the
   * session's reply lock until the reply's writes have landed (at most `replyWriteWaitMs`): while
   * Redis shows the lock held, a miss is looked up again, for at most that long. A socket moving to
   * another instance right after its first message binds to its session instead of a new one.
   */
  private async findEvenIfWrittenElsewhere(sessionId: string): Promise<SessionRecord | undefined> {
    const deadline = Date.now() + this.config.protocol.replyWriteWaitMs;
    let delay = WRITTEN_ELSEWHERE_FIRST_POLL_MS;
    for (;;) {
      const session = await this.store.findSession(sessionId);
      if (session || !this.lock.sharedAcrossInstances || Date.now() >= deadline) return session;
      // Redis unable to say: no wait (an unknown id would always wait the whole time).
      if (!(await this.lock.isHeld(sessionId, false))) return undefined;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(WRITTEN_ELSEWHERE_MAX_POLL_MS, delay * 2);
    }
  }

  /** Readable history: the owner (until they delete it), or any admin (SPEC 5). Others get NOT_FOUND. */
  async readable(principal: Principal, sessionId: string): Promise<SessionWithHistory> {
    const session = await this.store.findSession(sessionId);
    if (!session || (!principal.isAdmin && (session.userId !== principal.userId || session.hiddenAt)))
      throw new DomainError(ErrorCode.NOT_FOUND, 'Session not found');
    return { session, messages: await this.store.history(sessionId) };
  }

  /** Owner-only actions (end, share, rename): admins are refused on someone else's session too. */
  async owned(principal: Principal, sessionId: string): Promise<SessionRecord> {
    const session = await this.store.findSession(sessionId);
    if (!session || session.userId !== principal.userId || session.hiddenAt)
      throw new DomainError(ErrorCode.NOT_FOUND, 'Session not found');
    return session;
  }

  /** The owner names the session (validated by the caller); stored encrypted like the automatic name. */
  async rename(principal: Principal, sessionId: string, name: string): Promise<void> {
    await this.store.rename(await this.owned(principal, sessionId), name);
  }

  /**
   * The owner deletes the session from their list ([ext], docs/decisions/0006): it is ended, its
   * share link revoked and it is hidden from the owner; admins keep it (support history, metrics).
   * Repeating it is a no-op.
   */
  async deleteForOwner(principal: Principal, sessionId: string): Promise<void> {
    const session = await this.store.findSession(sessionId);
    if (!session || session.userId !== principal.userId)
      throw new DomainError(ErrorCode.NOT_FOUND, 'Session not found');
    if (session.hiddenAt) return;
    if (!session.endedAt) await this.end(sessionId, 'user');
    await this.store.hideFromOwner(session);
  }

  /**
   * Starts a new session for the user, usable at once: the sessions of the user this process knows
   * are ended now, those only the database knows when the new session's writes reach it.
   */
  start(
    userId: string,
    options: { id?: string; modelId?: string; helpRequested?: boolean } = {},
  ): SessionRecord {
    const session = this.store.createSession({
      id: options.id,
      userId,
      modelId: options.modelId,
      helpRequested: options.helpRequested,
    });
    for (const previousId of this.store.knownActiveSessionsOf(userId))
      if (previousId !== session.id)
        // Refused only when the outbox is full: that session stays active (the idle sweep ends it).
        void this.end(previousId, 'new_session').catch(() => undefined);
    this.store.endOtherSessions(session.id, userId, session.startedAt);
    this.events.emit({ type: 'session.created' });
    this.toDashboards('sessionStarted', session.id, userId);
    return session;
  }

  /** Ends a session once (idempotent); its sockets are told, dashboards updated. */
  async end(sessionId: string, reason: SessionEndReason): Promise<SessionRecord | undefined> {
    const ended = await this.store.end(sessionId);
    if (!ended) return undefined;
    this.announceEnd(sessionId, ended.userId, reason);
    return ended;
  }

  private announceEnd(sessionId: string, userId: string, reason: SessionEndReason): void {
    this.events.emit({ type: 'session.ended' });
    this.logger.log({ sessionId, reason }, 'session ended');
    this.broadcaster.toSession(sessionId, sessionEnded(sessionId, reason));
    this.toDashboards('sessionEnded', sessionId, userId);
  }

  private toDashboards(change: DashboardChange, sessionId: string, userId: string): void {
    this.broadcaster.toDashboards({ kind: 'dashboardUpdate', change, sessionId, userId, at: instant() });
  }

  /** Ends the caller's session; false when it had already ended (idempotent). */
  async endOwned(principal: Principal, sessionId: string): Promise<boolean> {
    const session = await this.owned(principal, sessionId);
    if (session.endedAt) return false;
    return (await this.end(sessionId, 'user')) !== undefined;
  }

  /**
   * Stores a message (in memory at once, in the database through the session's write lane) and names
   * the session from its first user message. `written` settles when the write landed.
   */
  async storeMessage(
    session: SessionRecord,
    draft: MessageDraft,
    counters?: MessageCounters,
    options?: { flush?: boolean },
  ): Promise<AppendedMessage> {
    // Named before the write, so a new session's insert carries its name (one write, SPEC 8).
    if (draft.sender === 'user' && draft.type === 'user_message' && draft.content.trim() !== '')
      this.store.setNameOnce(session, sessionNameFrom(draft.content, this.config.protocol.sessionNameChars));
    return this.store.appendMessage(session, draft, counters, options);
  }

  async selectModel(session: SessionRecord, modelId: string): Promise<void> {
    if (!this.llm.hasModel(modelId))
      throw new DomainError(ErrorCode.INVALID_MODEL, `Unknown model ${modelId}`);
    this.store.selectModel(session, modelId);
  }

  /**
   * Marks help requested (SPEC 4.7); true when this is a new request (not a repeat). Admins look for
   * it in their lists at once, so the confirmation waits for the write, at most `replyWriteWaitMs`
   * (an outage must not keep the user waiting).
   */
  async markHelpRequested(session: SessionRecord): Promise<boolean> {
    const { isNew, written } = this.store.markHelpRequested(session);
    await settledWithin(written, this.config.protocol.replyWriteWaitMs);
    return isNew;
  }

  /** The last user message of the session (the excerpt of a help alert). */
  async lastUserMessage(session: SessionRecord): Promise<string | undefined> {
    const recent = await this.store.recentMessages(
      session.id,
      Number.MAX_SAFE_INTEGER,
      this.config.llm.historyMessages + 1,
    );
    return [...recent].reverse().find((message) => message.sender === 'user')?.content;
  }

  async share(principal: Principal, sessionId: string): Promise<{ shareToken: string }> {
    await this.owned(principal, sessionId);
    const expiresAt = this.config.storage.shareLinkTtlMs
      ? new Date(Date.now() + this.config.storage.shareLinkTtlMs)
      : undefined;
    // Two concurrent share calls agree on one token: the session's lane runs them one after the other.
    const shareToken = await this.store.shareToken(
      sessionId,
      randomBytes(SHARE_TOKEN_BYTES).toString('base64url'),
      expiresAt,
    );
    if (!shareToken) throw new DomainError(ErrorCode.NOT_FOUND, 'Session not found');
    return { shareToken };
  }

  async unshare(principal: Principal, sessionId: string): Promise<void> {
    await this.owned(principal, sessionId);
    await this.store.clearShareToken(sessionId);
  }

  async shared(token: string): Promise<SessionWithHistory> {
    const session = await this.store.findByShareToken(token);
    if (!session || (session.shareExpiresAt && session.shareExpiresAt <= new Date()))
      throw new DomainError(ErrorCode.NOT_FOUND, 'Shared conversation not found');
    return { session, messages: await this.store.history(session.id) };
  }

  /** GET /sessions/:id: the history with freshly signed file links. */
  async detailView(principal: Principal, sessionId: string): Promise<SessionDetail> {
    const { session, messages } = await this.readable(principal, sessionId);
    return toSessionDetail(session, messages, (fileId) => this.fileUrls.sign(fileId));
  }

  /** GET /shared/:token: file links signed for the share (they stop working when it is revoked). */
  async sharedView(token: string): Promise<SharedSessionView> {
    const { session, messages } = await this.shared(token);
    return toSharedView(session, messages, (fileId) => this.fileUrls.signShared(fileId, token));
  }

  /** The configured models and the default one (GET /models). */
  modelCatalog(): { models: { id: string; name: string }[]; default: string } {
    return { models: this.llm.models(), default: this.llm.defaultModelId };
  }

  async listForUser(userId: string): Promise<{ sessions: SessionRecord[]; total: number; limit: number }> {
    const limit = this.config.protocol.sessionListLimit;
    const { sessions, total } = await this.repository.listByUser(userId, limit);
    const current = this.store.withLocalState(sessions).filter((session) => !session.hiddenAt);
    return { sessions: current, total: total - (sessions.length - current.length), limit };
  }

  /** The session's fields and counters (memory first). */
  async findSummary(sessionId: string): Promise<SessionRecord | undefined> {
    return this.store.findSession(sessionId);
  }
}
