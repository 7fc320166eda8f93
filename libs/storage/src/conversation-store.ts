import { join } from 'node:path';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { AppConfig, DomainError, ErrorCode, InjectConfig, newMessageId, newSessionId } from '@chatbox/common';
import { ContentCipher } from './content-cipher';
import { LegacyMigration } from './legacy-migration';
import { MessageRepository, MessageTotals } from './message.repository';
import { MongoRetry } from './mongo-retry';
import { CounterDelta, SessionRepository } from './session.repository';
import { Assist, MessageCounters, ReplyCheckpoint, SessionRecord, StoredMessage } from './session.model';
import type { CheckpointDocument } from './message.schema';
import {
  databaseUnavailable,
  JournaledOp,
  LaneOp,
  newCounterRevision,
  SessionWriteLanes,
  userLane,
} from './session-write-lanes';
import { WriteJournal } from './write-journal';

/** What this process knows of a session it serves: kept current by its own writes. */
interface CachedSession {
  record: SessionRecord;
  /** The last messages in order (model context); undefined until read. */
  window?: StoredMessage[];
  /** The window holds every message of the session (it is new, or has fewer than the window). */
  complete: boolean;
  /** Created here and not written yet: its insert goes first with its first write (name included). */
  unsaved?: boolean;
  nextSeq?: number;
  /**
   * The counter revision (`ctrRev`) as read with the record or last written by this process (null:
   * the document has none yet); counter updates are compare-and-sets on it (SessionWriteLanes).
   */
  counterRevision?: string | null;
}

export interface NewSession {
  /** A server-generated id announced before the session existed (never a client's). */
  id?: string;
  userId: string;
  modelId?: string;
  helpRequested?: boolean;
  at?: Date;
}

export type MessageDraft = Omit<StoredMessage, 'id' | 'seq'> & { id?: string; seq?: number };

export interface AppendedMessage {
  message: StoredMessage;
  /** Settles when the message reached the database; rejects only when it never can. */
  written: Promise<void>;
}

/** Messages kept in memory per session beyond the model's context (queued replies read a bit back). */
const WINDOW_MARGIN = 8;
const JOURNAL_DIRECTORY = 'outbox';

/**
 * Conversations as services see them (SPEC 8): sessions and their messages, read from memory when
 * this process has them and from the database otherwise, written through one lane per session
 * (`SessionWriteLanes`: ordered, coalesced counters, outbox with a journal). Callers never wait for
 * a write unless they need its outcome; a full outbox refuses with DATABASE_ERROR.
 */
@Injectable()
export class ConversationStore implements OnModuleInit {
  private readonly logger = new Logger(ConversationStore.name);
  private readonly cache = new Map<string, CachedSession>();
  private readonly activeByUser = new Map<string, Set<string>>();
  readonly lanes: SessionWriteLanes;
  private endedElsewhere: (sessionIds: string[], userId: string) => void = () => undefined;

  constructor(
    private readonly sessions: SessionRepository,
    private readonly messages: MessageRepository,
    private readonly migration: LegacyMigration,
    private readonly cipher: ContentCipher,
    private readonly retry: MongoRetry,
    @InjectConfig() private readonly config: AppConfig,
  ) {
    const journal = new WriteJournal<JournaledOp>(
      join(config.storage.dataDir, JOURNAL_DIRECTORY),
      config.protocol.journalCompactBytes,
    );
    this.lanes = new SessionWriteLanes(sessions, messages, retry, journal, {
      capacity: config.protocol.outboxCapacity,
      retryIntervalMs: config.protocol.outboxFlushIntervalMs,
      counterDelayMs: config.protocol.counterFlushDelayMs,
      // A conflict is retried like a transient error, then waits like one.
      counterConflictAttempts: config.mongo.retryAttempts,
    });
    this.lanes.setHooks({
      averageResponseTime: (sessionId) => this.cache.get(sessionId)?.record.avgResponseTimeMs,
      sessionsEnded: (sessionIds, userId) => {
        for (const sessionId of sessionIds) this.markEnded(sessionId, new Date());
        this.endedElsewhere(sessionIds, userId);
      },
      reconciled: (sessionId, totals, pending) => {
        this.applyTotals(sessionId, totals);
        const session = this.cache.get(sessionId)?.record;
        if (session && pending) this.applyDelta(session, pending);
      },
      counterRevision: (sessionId) => this.cache.get(sessionId)?.counterRevision,
      counterRevised: (sessionId, revision) => {
        const cached = this.cache.get(sessionId);
        if (cached) cached.counterRevision = revision;
      },
    });
  }

  /**
   * Earlier data first (migrated), then what the previous process had not written (journal): queued
   * again here, before the app listens, and written in the background in each session's order.
   * Reads that must not miss them consult the queue (`history`, `checkpoints`).
   */
  async onModuleInit(): Promise<void> {
    await this.migration.run();
    this.lanes.replayJournal();
  }

  /** Sessions ended because a newer one of their user started elsewhere (found in the database). */
  onEndedElsewhere(listener: (sessionIds: string[], userId: string) => void): void {
    this.endedElsewhere = listener;
  }

  /** Writes waiting for the database (the outbox), for health and metrics. */
  get pendingWrites(): number {
    return this.lanes.size;
  }

  get waitingForDatabase(): boolean {
    return this.lanes.waitingForDatabase;
  }

  // ---- sessions ---------------------------------------------------------------------------

  /**
   * A new session, usable at once. Its insert is queued with its first write (SPEC 8: the first
   * message's derived name goes in with the insert), so a session nobody wrote to costs nothing.
   */
  createSession(input: NewSession): SessionRecord {
    const at = input.at ?? new Date();
    const record: SessionRecord = {
      id: input.id ?? newSessionId(),
      userId: input.userId,
      ...(input.modelId ? { modelId: input.modelId } : {}),
      startedAt: at,
      lastActivity: at,
      adminAssisted: false,
      helpRequested: input.helpRequested === true,
      ...(input.helpRequested ? { helpRequestedAt: at, helpState: 'open' as const } : {}),
      totalTokens: 0,
      promptTokens: 0,
      completionTokens: 0,
      maxResponseTimeMs: 0,
      avgResponseTimeMs: 0,
      responseTimeSumMs: 0,
      responseCount: 0,
      messageCount: 0,
      assists: [],
    };
    this.remember({
      record,
      window: [],
      complete: true,
      nextSeq: 0,
      unsaved: true,
      counterRevision: newCounterRevision(),
    });
    return record;
  }

  /** The session's fields and counters: from memory, else from the database. */
  async findSession(sessionId: string): Promise<SessionRecord | undefined> {
    const cached = this.touch(sessionId);
    if (cached) return cached.record;
    const found = await this.sessions.findWithRevision(sessionId);
    if (!found) return undefined;
    const { record, counterRevision } = found;
    // A concurrent read may have filled it meanwhile: keep the first (it may hold newer writes).
    return (this.cache.get(sessionId) ?? this.remember({ record, complete: false, counterRevision })).record;
  }

  /** Active sessions of the user this process knows (ended at once when a new one starts). */
  knownActiveSessionsOf(userId: string): string[] {
    return [...(this.activeByUser.get(userId) ?? [])].filter(
      (sessionId) => this.cache.get(sessionId)?.record.endedAt === undefined,
    );
  }

  /**
   * Ends every other active session of the user, also those only the database knows: queued in the
   * user's lane (journaled), so the new session's own writes never wait for the lookup.
   */
  endOtherSessions(sessionId: string, userId: string, before: Date): void {
    void this.lanes
      .enqueue(userLane(userId), { kind: 'endOthers', userId, sessionId, before })
      .catch(() => undefined);
  }

  /**
   * Ends an active session once (the first end time is kept); undefined when already ended.
   * DATABASE_ERROR when the outbox is full, before anything changed in memory.
   */
  async end(sessionId: string, at = new Date()): Promise<SessionRecord | undefined> {
    const session = await this.findSession(sessionId);
    if (!session || session.endedAt) return undefined;
    this.assertWritable(sessionId);
    this.markEnded(sessionId, at);
    void this.write(sessionId, { kind: 'end', at }).catch(() => undefined);
    return session;
  }

  /** The owner's name for the session (encrypted like the automatic one). */
  async rename(session: SessionRecord, name: string): Promise<void> {
    this.assertWritable(session.id);
    session.name = name;
    return this.change(session.id, {
      set: this.sessions.nameFields(name),
      ...(this.cipher.enabled ? {} : { unset: ['nmEnc'] }),
    });
  }

  /** Takes the session off its owner's list and revokes its share link; admins still see it. */
  async hideFromOwner(session: SessionRecord, at = new Date()): Promise<void> {
    this.assertWritable(session.id);
    session.hiddenAt = at;
    session.shareToken = undefined;
    session.shareExpiresAt = undefined;
    return this.change(session.id, { set: { hiddenAt: at }, unset: ['shareToken', 'shareExpiresAt'] });
  }

  /** Names a session once, from its first user message. */
  setNameOnce(session: SessionRecord, name: string): boolean {
    if (session.name !== undefined) return false;
    session.name = name;
    // Not written yet: the insert carries the name.
    if (!this.cache.get(session.id)?.unsaved)
      void this.change(session.id, { set: this.sessions.nameFields(name) });
    return true;
  }

  /** DATABASE_ERROR when the outbox is full (the model stays as it was). */
  selectModel(session: SessionRecord, modelId: string): void {
    this.assertWritable(session.id);
    session.modelId = modelId;
    void this.change(session.id, { set: { modelId } });
  }

  setDifyConversation(session: SessionRecord, conversationId: string): void {
    if (session.difyConversationId === conversationId) return;
    session.difyConversationId = conversationId;
    // Best effort: refused when the outbox is full (the reply itself was accepted).
    void this.change(session.id, { set: { difyConversationId: conversationId } });
  }

  /**
   * Marks help requested and opens the help queue entry; `isNew` when this is a new request (not a
   * repeat while one is open or assisted; a resolved request opens again). Asked while an admin is
   * already in the conversation (a takeover nobody asked for, or after a resolve), the request is
   * `assisted` at once and not new: someone is helping.
   */
  markHelpRequested(session: SessionRecord, at = new Date()): { isNew: boolean; written: Promise<void> } {
    const repeat = session.helpState === 'open' || session.helpState === 'assisted';
    session.helpRequested = true;
    if (repeat) return { isNew: false, written: Promise.resolve() };
    const helpState = session.assistingSince !== undefined ? 'assisted' : 'open';
    session.helpRequestedAt = at;
    session.helpState = helpState;
    const written = this.change(session.id, {
      set: { helpRequested: true, helpRequestedAt: at, helpState },
    });
    return { isNew: helpState === 'open', written };
  }

  /**
   * The help request is handled (SPEC 5 resolve). `changed` false when it already was; undefined
   * when the session never had a help request or a takeover (nothing to resolve).
   */
  async resolveHelp(session: SessionRecord): Promise<{ changed: boolean } | undefined> {
    if (!session.helpState) return undefined;
    if (session.helpState === 'resolved') return { changed: false };
    session.helpState = 'resolved';
    await this.change(session.id, { set: { helpState: 'resolved' } });
    return { changed: true };
  }

  /**
   * Marks the session assisted by the admin (the exclusivity itself is the takeover lock). Runs in the
   * session's order; DATABASE_ERROR at once when the database is refusing its writes, or once the
   * retries are spent.
   */
  async startAssist(
    sessionId: string,
    admin: { adminId: string; adminName: string },
    at: Date,
  ): Promise<{ session: SessionRecord; started: boolean } | undefined> {
    return this.call(sessionId, async () => {
      const session = await this.findSession(sessionId);
      if (!session || session.endedAt) return undefined;
      // Already marked (a racing request of the same admin, who also holds the lock): nothing to do.
      if (session.assistingSince) return { session, started: false };
      const set = {
        assistingAdminId: admin.adminId,
        assistingAdminName: admin.adminName,
        assistingSince: at,
        // Only a waiting help request moves on; a takeover nobody asked for gets no help_state.
        ...(session.helpState === 'open' ? { helpState: 'assisted' as const } : {}),
      };
      await this.retry.run('startAssist', () =>
        this.sessions.changeFields(sessionId, { set, unset: ['assistDeadline'] }),
      );
      Object.assign(session, set, { assistDeadline: undefined });
      return { session, started: true };
    });
  }

  /**
   * Ends the current assist (logged in `assists`); undefined when it was not this admin's.
   * DATABASE_ERROR as `startAssist`.
   */
  async endAssist(
    sessionId: string,
    adminId: string,
    end: Date,
  ): Promise<{ session: SessionRecord; assist: Assist } | undefined> {
    return this.call(sessionId, async () => {
      const session = await this.findSession(sessionId);
      if (!session?.assistingSince || session.assistingAdminId !== adminId) return undefined;
      const assist: Assist = {
        adminId,
        adminName: session.assistingAdminName ?? adminId,
        start: session.assistingSince,
        end,
      };
      const resolvesHelp = session.helpState === 'assisted';
      const since = session.assistingSince;
      // Retried whole (read, then write): the assist record is added as a set member, once.
      await this.retry.run('endAssist', () =>
        this.sessions.closeAssist(sessionId, since, assist, resolvesHelp),
      );
      session.adminAssisted = true;
      if (resolvesHelp) session.helpState = 'resolved';
      session.assists = [...session.assists, assist];
      session.assistingSince = undefined;
      session.assistingAdminId = undefined;
      session.assistingAdminName = undefined;
      session.assistDeadline = undefined;
      return { session, assist };
    });
  }

  /** When an assist whose admin has gone is released (undefined: the admin is back). */
  setAssistDeadline(session: SessionRecord, deadline: Date | undefined): void {
    if (session.assistDeadline?.getTime() === deadline?.getTime()) return;
    session.assistDeadline = deadline;
    void this.change(
      session.id,
      deadline ? { set: { assistDeadline: deadline } } : { unset: ['assistDeadline'] },
    );
  }

  /**
   * The share token in force: the existing live one, else `token` (two racing calls agree; a retry
   * sets the same token). DATABASE_ERROR as `startAssist`.
   */
  async shareToken(sessionId: string, token: string, expiresAt?: Date): Promise<string | undefined> {
    return this.call(sessionId, async () => {
      const inForce = await this.retry.run('shareToken', () =>
        this.sessions.shareTokenOrSet(sessionId, token, expiresAt),
      );
      const cached = this.cache.get(sessionId)?.record;
      if (cached && inForce) {
        cached.shareToken = inForce;
        if (inForce === token) cached.shareExpiresAt = expiresAt;
      }
      return inForce;
    });
  }

  async clearShareToken(sessionId: string): Promise<void> {
    await this.call(sessionId, () =>
      this.retry.run('clearShareToken', () =>
        this.sessions.changeFields(sessionId, { unset: ['shareToken', 'shareExpiresAt'] }),
      ),
    );
    const cached = this.cache.get(sessionId)?.record;
    if (cached) {
      cached.shareToken = undefined;
      cached.shareExpiresAt = undefined;
    }
  }

  /**
   * Rows read from the database, with what this process holds of them (its writes may not have
   * landed yet: counters wait for the exchange's end, field changes are in flight).
   */
  withLocalState(sessions: SessionRecord[]): SessionRecord[] {
    return sessions.map((session) => this.cache.get(session.id)?.record ?? session);
  }

  async findByShareToken(token: string): Promise<SessionRecord | undefined> {
    return this.sessions.findByShareToken(token);
  }

  /**
   * Another instance changed the session: what this process holds of it is read again. False when it
   * is kept, because writes of this process are still on their way (they carry the newer state).
   */
  invalidate(sessionId: string): boolean {
    if (this.lanes.busy(sessionId) || this.cache.get(sessionId)?.unsaved) return false;
    this.forget(sessionId);
    return true;
  }

  // ---- messages ---------------------------------------------------------------------------

  /** The next position in the session (an AI reply takes its place when it starts). */
  async reserveSeq(sessionId: string): Promise<number> {
    const cached = await this.withWindow(sessionId);
    const seq = cached.nextSeq ?? 0;
    cached.nextSeq = seq + 1;
    return seq;
  }

  /**
   * Stores a message: in memory at once (window, counters), in the database through the session's
   * lane. Rejects with DATABASE_ERROR when the outbox is full (nothing is accepted that could be
   * lost). `flush` writes the session's counters now instead of with the next message;
   * `dropsCheckpoint` deletes the reply's checkpoint with the same write (a reply stored whole).
   */
  async appendMessage(
    session: SessionRecord,
    draft: MessageDraft,
    counters: MessageCounters = {},
    options: { flush?: boolean; dropsCheckpoint?: boolean } = {},
  ): Promise<AppendedMessage> {
    this.assertWritable(session.id);
    const seq = draft.seq ?? (await this.reserveSeq(session.id));
    // Again after the wait: other writes may have taken the last places meanwhile.
    this.assertWritable(session.id);
    const message: StoredMessage = { ...draft, id: draft.id ?? newMessageId(), seq };
    const delta = deltaOf(message, counters);
    const written = this.write(session.id, {
      kind: 'insertMessage',
      document: this.messages.toDocument(session.id, session.userId, message),
      delta,
      flush: options.flush,
      ...(options.dropsCheckpoint ? { dropsCheckpoint: true } : {}),
    });
    // Handled here so a caller that does not wait for the write never leaves a rejection unhandled.
    written.catch(() => undefined);
    this.addToWindow(session.id, message);
    this.applyDelta(session, delta);
    return { message, written };
  }

  /** The last `limit` messages up to `upToSeq` (model context): memory first, else the database. */
  async recentMessages(sessionId: string, upToSeq: number, limit: number): Promise<StoredMessage[]> {
    const cached = await this.withWindow(sessionId);
    const window = (cached.window ?? []).filter((message) => message.seq <= upToSeq);
    if (window.length >= limit || cached.complete) return window.slice(-limit);
    const stored = await this.messages.lastOfSession(sessionId, limit + (cached.window?.length ?? 0));
    return stored.filter((message) => message.seq <= upToSeq).slice(-limit);
  }

  /** The whole history in order, including messages still on their way to the database. */
  async history(sessionId: string): Promise<StoredMessage[]> {
    const { messages } = await this.withQueuedMessages(sessionId, () =>
      this.messages.listBySession(sessionId),
    );
    return messages;
  }

  async findMessage(sessionId: string, messageId: string): Promise<StoredMessage | undefined> {
    const inMemory =
      this.cache.get(sessionId)?.window?.find((message) => message.id === messageId) ??
      this.lanes
        .pendingMessages(sessionId)
        .filter((document) => document._id === messageId)
        .map((document) => this.messages.toMessage(document))[0];
    return inMemory ?? this.messages.findInSession(sessionId, messageId);
  }

  /** Which of these file ids a message refers to, including messages still on their way to the database. */
  async referencedFileIds(fileIds: string[]): Promise<Set<string>> {
    // Queued before and after the read, as in `history`: an insert landing meanwhile is in one of them.
    const queuedBefore = this.lanes.pendingFileIds();
    const found = await this.messages.referencedFileIds(fileIds);
    const wanted = new Set(fileIds);
    for (const fileId of [...queuedBefore, ...this.lanes.pendingFileIds()])
      if (wanted.has(fileId)) found.add(fileId);
    return found;
  }

  async sessionReferencesFile(sessionId: string, fileId: string): Promise<boolean> {
    const pending = this.lanes.pendingMessages(sessionId).some((document) => document.fileId === fileId);
    return pending || this.messages.sessionReferencesFile(sessionId, fileId);
  }

  // ---- streaming replies ------------------------------------------------------------------

  /** Saves a streaming reply's text so far (replaces the previous checkpoint of the reply). */
  checkpoint(session: SessionRecord, message: StoredMessage, owner: string): void {
    // The final write matters more; a checkpoint can wait for the next interval.
    if (!this.lanes.hasCapacity(this.writesFor(session.id))) return;
    void this.write(session.id, {
      kind: 'checkpoint',
      document: this.checkpointDocument(session, message, owner),
    }).catch(() => undefined);
  }

  /**
   * A reply starts streaming: marked in the outbox journal only (a local file, no database write),
   * so that a process killed before the reply's first checkpoint still leaves it to be stored as
   * `interrupted` by the next start (`checkpoints`). Cleared by `clearReplyMarker`.
   */
  markReplyStarted(session: SessionRecord, message: StoredMessage, owner: string): void {
    this.lanes.markReplyStarted(this.checkpointDocument(session, message, owner));
  }

  /** The reply was stored (its write queued) or given up. */
  clearReplyMarker(messageId: string): void {
    this.lanes.clearReplyMarker(messageId);
  }

  /**
   * Replies a process was streaming when it stopped: the stored checkpoints, together with what the
   * outbox still holds (checkpoints replayed from the journal and not written yet, the markers of
   * replies killed before their first checkpoint), less the replies being stored whole.
   */
  async checkpoints(): Promise<ReplyCheckpoint[]> {
    const queued = this.lanes.checkpointView();
    const stored = await this.messages.listCheckpoints();
    const found = new Map<string, ReplyCheckpoint>();
    for (const marker of queued.markers) found.set(marker._id, this.messages.toCheckpoint(marker));
    for (const checkpoint of stored)
      if (!queued.settled.has(checkpoint.message.id)) found.set(checkpoint.message.id, checkpoint);
    for (const document of queued.pending) found.set(document._id, this.messages.toCheckpoint(document));
    return [...found.values()];
  }

  /**
   * Stores a reply whose streaming process is gone as `interrupted`, with the text it had reached
   * (a no-op when the reply was stored whole after all: inserts never overwrite).
   */
  async recoverCheckpoint(checkpoint: ReplyCheckpoint): Promise<StoredMessage> {
    const { sessionId } = checkpoint;
    const message: StoredMessage = {
      ...checkpoint.message,
      meta: { ...(checkpoint.message.meta ?? {}), status: 'interrupted' },
    };
    // Its insert and the rebuild of the counters, or neither (the next start tries again).
    this.lanes.assertCapacity(2);
    const written = this.lanes.enqueue(sessionId, {
      kind: 'insertMessage',
      document: this.messages.toDocument(sessionId, checkpoint.userId, message),
      dropsCheckpoint: true,
    });
    void this.lanes.enqueue(sessionId, { kind: 'reconcile' }).catch(() => undefined);
    // Its insert is journaled: the marker (if the reply had one) has done its job.
    this.lanes.clearReplyMarker(message.id);
    this.forget(sessionId);
    await written;
    return message;
  }

  /** Shutdown: writes what waits until `deadline`; the rest stays journaled for the next start. */
  async flush(deadline: number): Promise<number> {
    const left = await this.lanes.flush(deadline);
    if (left > 0) this.logger.warn({ left }, 'database unreachable at shutdown: writes kept in the journal');
    return left;
  }

  /** Writes what waits now (counters too) and waits for it until `deadline`; returns what is left. */
  async settle(deadline = Date.now() + this.config.protocol.shutdownDeadlineMs): Promise<number> {
    return this.lanes.settle(deadline);
  }

  // ---- internals --------------------------------------------------------------------------

  /**
   * Queues a write of the session, its insert first when it has not been written yet. Rejects with
   * DATABASE_ERROR (never throws) when the outbox cannot take them both: then neither is queued, so
   * the insert still goes first with the next write.
   */
  private write(sessionId: string, op: LaneOp): Promise<void> {
    if (!this.lanes.hasCapacity(this.writesFor(sessionId))) return Promise.reject(databaseUnavailable());
    this.ensureSaved(sessionId);
    return this.lanes.enqueue(sessionId, op);
  }

  /** Runs `run` in the session's order (its insert first when it has not been written yet). */
  private call<T>(sessionId: string, run: () => Promise<T>): Promise<T> {
    if (!this.lanes.hasCapacity(this.writesFor(sessionId) - 1)) return Promise.reject(databaseUnavailable());
    this.ensureSaved(sessionId);
    return this.lanes.call(sessionId, run);
  }

  /** DATABASE_ERROR, before anything changes, when a write of the session would be refused. */
  private assertWritable(sessionId: string): void {
    this.lanes.assertCapacity(this.writesFor(sessionId));
  }

  /** Outbox places a write of the session takes (its insert too, when it has not been written yet). */
  private writesFor(sessionId: string): number {
    return this.cache.get(sessionId)?.unsaved ? 2 : 1;
  }

  private ensureSaved(sessionId: string): void {
    const cached = this.cache.get(sessionId);
    if (!cached?.unsaved) return;
    const document = this.sessions.toDocument(cached.record, cached.counterRevision ?? undefined);
    this.lanes.enqueue(sessionId, { kind: 'insertSession', document }).catch(() => undefined);
    cached.unsaved = false;
  }

  private checkpointDocument(
    session: SessionRecord,
    message: StoredMessage,
    owner: string,
  ): CheckpointDocument {
    return {
      _id: message.id,
      sid: session.id,
      uid: session.userId,
      owner,
      at: new Date(),
      message: this.messages.toDocument(session.id, session.userId, message),
    };
  }

  /**
   * Queues a field change (in memory it is already done); the promise settles when it is in the
   * database: REST actions wait for it, the chat does not.
   */
  private change(
    sessionId: string,
    change: { set?: Record<string, unknown>; unset?: string[] },
  ): Promise<void> {
    const written = this.write(sessionId, { kind: 'fields', change: change as never });
    written.catch(() => undefined);
    return written;
  }

  /**
   * Messages read from the database plus the session's messages queued before or after the read, in
   * order: an insert landing while the read runs has left the queue by its end, and the read may not
   * have seen it, so the queue is looked at on both sides.
   */
  private async withQueuedMessages(
    sessionId: string,
    read: () => Promise<StoredMessage[]>,
  ): Promise<{ stored: StoredMessage[]; messages: StoredMessage[] }> {
    const queuedBefore = this.lanes.pendingMessages(sessionId);
    const stored = await read();
    const byId = new Map(stored.map((message) => [message.id, message]));
    for (const document of [...queuedBefore, ...this.lanes.pendingMessages(sessionId)])
      if (!byId.has(document._id)) byId.set(document._id, this.messages.toMessage(document));
    return { stored, messages: [...byId.values()].sort(bySeq) };
  }

  private async withWindow(sessionId: string): Promise<CachedSession> {
    const session = await this.findSession(sessionId);
    const cached = this.cache.get(sessionId);
    if (!session || !cached) throw new DomainError(ErrorCode.NOT_FOUND, 'Session not found');
    if (cached.window) return cached;
    const size = this.windowSize;
    const { stored, messages: window } = await this.withQueuedMessages(sessionId, () =>
      this.messages.lastOfSession(sessionId, size),
    );
    if (!cached.window) {
      cached.window = window.slice(-size);
      cached.complete = stored.length < size;
      const last = window.at(-1)?.seq ?? -1;
      cached.nextSeq = Math.max(cached.nextSeq ?? 0, last + 1);
    }
    return cached;
  }

  private get windowSize(): number {
    return this.config.llm.historyMessages + 1 + WINDOW_MARGIN;
  }

  private addToWindow(sessionId: string, message: StoredMessage): void {
    const cached = this.cache.get(sessionId);
    if (!cached?.window) return;
    cached.window.push(message);
    cached.window.sort(bySeq);
    if (cached.window.length > this.windowSize) {
      cached.window.splice(0, cached.window.length - this.windowSize);
      cached.complete = false;
    }
  }

  private applyDelta(session: SessionRecord, delta: CounterDelta): void {
    session.messageCount += delta.messages;
    session.promptTokens += delta.promptTokens;
    session.completionTokens += delta.completionTokens;
    session.totalTokens += delta.promptTokens + delta.completionTokens;
    session.responseTimeSumMs = (session.responseTimeSumMs ?? 0) + delta.responseTimeSum;
    session.responseCount = (session.responseCount ?? 0) + delta.responseCount;
    session.maxResponseTimeMs = Math.max(session.maxResponseTimeMs, delta.maxResponseTime);
    if (session.responseCount > 0)
      session.avgResponseTimeMs = Math.round(session.responseTimeSumMs / session.responseCount);
    if (delta.lastActivity && delta.lastActivity > session.lastActivity)
      session.lastActivity = delta.lastActivity;
  }

  private applyTotals(sessionId: string, totals: MessageTotals): void {
    const session = this.cache.get(sessionId)?.record;
    if (!session) return;
    session.messageCount = totals.count;
    session.promptTokens = totals.promptTokens;
    session.completionTokens = totals.completionTokens;
    session.totalTokens = totals.promptTokens + totals.completionTokens;
    session.responseTimeSumMs = totals.responseTimeSum;
    session.responseCount = totals.responseCount;
    session.maxResponseTimeMs = totals.maxResponseTime;
    session.avgResponseTimeMs = totals.responseCount
      ? Math.round(totals.responseTimeSum / totals.responseCount)
      : 0;
  }

  private markEnded(sessionId: string, at: Date): void {
    const session = this.cache.get(sessionId)?.record;
    if (!session || session.endedAt) return;
    session.endedAt = at;
    session.durationSec = Math.max(0, Math.round((at.getTime() - session.startedAt.getTime()) / 1000));
    this.activeByUser.get(session.userId)?.delete(sessionId);
  }

  private remember(entry: CachedSession): CachedSession {
    this.cache.set(entry.record.id, entry);
    if (!entry.record.endedAt) {
      let sessions = this.activeByUser.get(entry.record.userId);
      if (!sessions) this.activeByUser.set(entry.record.userId, (sessions = new Set()));
      sessions.add(entry.record.id);
    }
    this.evictIfFull();
    return entry;
  }

  /** Most recently used last (Map order), so eviction starts with the least recently used. */
  private touch(sessionId: string): CachedSession | undefined {
    const cached = this.cache.get(sessionId);
    if (!cached) return undefined;
    this.cache.delete(sessionId);
    this.cache.set(sessionId, cached);
    return cached;
  }

  private forget(sessionId: string): void {
    const cached = this.cache.get(sessionId);
    if (!cached) return;
    this.cache.delete(sessionId);
    this.activeByUser.get(cached.record.userId)?.delete(sessionId);
  }

  private evictIfFull(): void {
    const limit = this.config.protocol.sessionCacheEntries;
    if (this.cache.size <= limit) return;
    for (const sessionId of this.cache.keys()) {
      if (this.cache.size <= limit) break;
      if (!this.lanes.busy(sessionId) && !this.cache.get(sessionId)?.unsaved) this.forget(sessionId);
    }
  }
}

function bySeq(a: StoredMessage, b: StoredMessage): number {
  return a.seq - b.seq || a.timestamp.getTime() - b.timestamp.getTime();
}

/** What a stored message adds to its session's counters. */
function deltaOf(message: StoredMessage, counters: MessageCounters): CounterDelta {
  const responded = counters.responseTimeMs !== undefined;
  return {
    messages: 1,
    promptTokens: counters.promptTokens ?? 0,
    completionTokens: counters.completionTokens ?? 0,
    responseTimeSum: counters.responseTimeMs ?? 0,
    responseCount: responded ? 1 : 0,
    maxResponseTime: counters.responseTimeMs ?? 0,
    lastActivity: message.timestamp,
  };
}
