import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { Model, QueryFilter } from 'mongoose';
import { ContentCipher } from './content-cipher';
import { createMissingIndexes } from './ensure-indexes';
import type { MessageTotals } from './message.repository';
import { AppConfig, InjectConfig } from '@chatbox/common';
import { collectionInsertBatcher, InsertBatcher } from './insert-batcher';
import { isDuplicateKeyError, MongoRetry } from './mongo-retry';
import { LegacyMessageDocument, SESSION_INDEXES, SESSION_MODEL, SessionDocument } from './session.schema';
import {
  Assist,
  HELP_STATES,
  HelpState,
  SessionListFilter,
  SessionListQuery,
  SessionRecord,
  SessionSortField,
} from './session.model';

/** API sort names (SPEC 5) → stored fields. */
const SORT_FIELDS: Record<SessionSortField, string> = {
  start_time: 'ts',
  end_time: 'endTs',
  last_activity: 'lastActivity',
  duration: 'dur',
  message_count: 'msgCount',
  total_tokens: 'totalTokens',
  user_id: 'uid',
  avg_response_time: 'avgRespTime',
  max_response_time: 'maxRespTime',
};

/** Every sort the session list accepts, in SPEC order. */
export const SESSION_SORT_FIELDS = Object.keys(SORT_FIELDS) as SessionSortField[];

const ACTIVE: QueryFilter<SessionDocument> = { endTs: { $exists: false } };
const VISIBLE_TO_OWNER: QueryFilter<SessionDocument> = { hiddenAt: { $exists: false } };

/**
 * Only a session with a help request has a help state: a takeover nobody asked for has none (earlier
 * versions wrote one anyway; it is not read). Documents written before `helpState` existed derive
 * theirs from the older fields. The list filter (`helpStateFilter`) matches exactly what
 * `helpStateOf` returns.
 */
const LEGACY_HELP_STATE: Record<HelpState, QueryFilter<SessionDocument>> = {
  open: { adminAssisted: { $ne: true }, assistingSince: { $exists: false } },
  assisted: { assistingSince: { $exists: true } },
  resolved: { adminAssisted: true, assistingSince: { $exists: false } },
};

function helpStateOf(document: SessionDocument): HelpState | undefined {
  if (document.helpRequested !== true) return undefined;
  if (HELP_STATES.includes(document.helpState as HelpState)) return document.helpState as HelpState;
  if (document.assistingSince) return 'assisted';
  return document.adminAssisted === true ? 'resolved' : 'open';
}

function helpStateFilter(state: HelpState): QueryFilter<SessionDocument>[] {
  return [
    { helpRequested: true, helpState: state },
    { helpRequested: true, helpState: { $exists: false }, ...LEGACY_HELP_STATE[state] },
  ];
}

/** Regular-expression text matching `text` literally. */
function literalPattern(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
/** Session reads never load the array of earlier versions (it can be huge; it is migrated). */
const WITHOUT_LEGACY_MESSAGES = { msgs: 0 } as const;

interface TakeoverLock {
  _id: string;
  adminId: string;
  adminName: string;
  at: Date;
}

/** Counter changes written in one update (`$inc` sums, `$max` for the largest response time). */
export interface CounterDelta {
  messages: number;
  promptTokens: number;
  completionTokens: number;
  responseTimeSum: number;
  responseCount: number;
  maxResponseTime: number;
  lastActivity?: Date;
  /** The average after this delta, when the writer knows the session's sums. */
  averageResponseTime?: number;
}

/**
 * A counter write as a compare-and-set on `ctrRev`: it applies only to the state named `prev`
 * (null: a document that has no revision yet, written by an earlier version) and sets `next`.
 * Sent again with the same revisions it is a no-op once it landed, however late it lands.
 */
export interface CounterRevision {
  prev: string | null;
  next: string;
}

/**
 * `applied`: the document is at `next` (this write landed, now or on an earlier attempt);
 * `conflict`: another write moved the revision first; `missing`: no such session.
 */
export type CounterOutcome = 'applied' | 'conflict' | 'missing';

/** Plain field changes (idempotent `$set`/`$unset`), named by the store's intent methods. */
export interface FieldChange {
  set?: Partial<Omit<SessionDocument, '_id' | 'msgs' | 'assists'>>;
  unset?: (keyof SessionDocument)[];
}

export interface LegacySession {
  id: string;
  userId: string;
  messages: LegacyMessageDocument[];
}

/**
 * The `sessions` collection (SPEC 8): metadata and counters, no messages. Writes here are called
 * only through `SessionWriteLanes` (one writer per session in the process), so none of them relies on
 * a conditional update being atomic (FerretDB 1.24 does not make it so).
 */
@Injectable()
export class SessionRepository implements OnModuleInit {
  /** New sessions of every user, gathered into few commands (see `InsertBatcher`). */
  private readonly inserts: InsertBatcher<SessionDocument>;

  constructor(
    @InjectModel(SESSION_MODEL) private readonly model: Model<SessionDocument>,
    private readonly cipher: ContentCipher,
    private readonly retry: MongoRetry,
    @InjectConfig() config: AppConfig,
  ) {
    this.inserts = collectionInsertBatcher(
      this.model.collection,
      retry,
      'insertSessionBatch',
      config.protocol,
    );
  }

  async onModuleInit(): Promise<void> {
    await this.ensureIndexes();
  }

  async ensureIndexes(): Promise<void> {
    await this.retry.run('createIndexes', () => createMissingIndexes(this.model.collection, SESSION_INDEXES));
  }

  /** The stored document of a new session (name encrypted like message text). */
  toDocument(session: SessionRecord, counterRevision?: string): SessionDocument {
    return {
      _id: session.id,
      uid: session.userId,
      ...(session.name !== undefined ? this.nameFields(session.name) : {}),
      ...(session.modelId ? { modelId: session.modelId } : {}),
      ts: session.startedAt,
      lastActivity: session.lastActivity,
      adminAssisted: session.adminAssisted,
      helpRequested: session.helpRequested,
      ...(session.helpRequestedAt ? { helpRequestedAt: session.helpRequestedAt } : {}),
      ...(session.helpState ? { helpState: session.helpState } : {}),
      totalTokens: session.totalTokens,
      promptTokens: session.promptTokens,
      completionTokens: session.completionTokens,
      maxRespTime: session.maxResponseTimeMs,
      avgRespTime: session.avgResponseTimeMs,
      respTimeSum: session.responseTimeSumMs ?? 0,
      respCount: session.responseCount ?? 0,
      msgCount: session.messageCount,
      ...(counterRevision ? { ctrRev: counterRevision } : {}),
    };
  }

  nameFields(name: string): Pick<SessionDocument, 'nm' | 'nmEnc'> {
    return { nm: this.cipher.encrypt(name), ...(this.cipher.enabled ? { nmEnc: true } : {}) };
  }

  /** A primary-key insert: a retry or replay of one that landed is a no-op. */
  /** Insert only; a session already there (a retry, a replay) is left as it is. */
  async insert(document: SessionDocument): Promise<void> {
    await this.inserts.insert(document);
  }

  /**
   * The hot write of every exchange: the driver's own update (no Mongoose casting: the shape is ours),
   * as a compare-and-set on the counter revision (`CounterRevision`).
   */
  async applyCounters(
    sessionId: string,
    delta: CounterDelta,
    revision: CounterRevision,
  ): Promise<CounterOutcome> {
    const result = await this.model.collection.updateOne(this.atRevision(sessionId, revision.prev), {
      $inc: {
        msgCount: delta.messages,
        totalTokens: delta.promptTokens + delta.completionTokens,
        promptTokens: delta.promptTokens,
        completionTokens: delta.completionTokens,
        respTimeSum: delta.responseTimeSum,
        respCount: delta.responseCount,
      },
      $max: {
        maxRespTime: delta.maxResponseTime,
        ...(delta.lastActivity ? { lastActivity: delta.lastActivity } : {}),
      },
      $set: {
        ctrRev: revision.next,
        ...(delta.averageResponseTime !== undefined ? { avgRespTime: delta.averageResponseTime } : {}),
      },
    });
    return result.matchedCount > 0 ? 'applied' : this.outcomeAfterMiss(sessionId, revision);
  }

  /** Counters rebuilt from the stored messages (absolute values), as a compare-and-set too. */
  async setCounters(
    sessionId: string,
    totals: MessageTotals,
    revision: CounterRevision,
  ): Promise<CounterOutcome> {
    const result = await this.model.collection.updateOne(this.atRevision(sessionId, revision.prev), {
      $set: {
        msgCount: totals.count,
        totalTokens: totals.promptTokens + totals.completionTokens,
        promptTokens: totals.promptTokens,
        completionTokens: totals.completionTokens,
        respTimeSum: totals.responseTimeSum,
        respCount: totals.responseCount,
        maxRespTime: totals.maxResponseTime,
        avgRespTime: totals.responseCount ? Math.round(totals.responseTimeSum / totals.responseCount) : 0,
        ctrRev: revision.next,
      },
      ...(totals.lastAt ? { $max: { lastActivity: totals.lastAt } } : {}),
    });
    return result.matchedCount > 0 ? 'applied' : this.outcomeAfterMiss(sessionId, revision);
  }

  /** The session's counter revision: null when it has none yet, undefined when there is no session. */
  async counterRevisionOf(sessionId: string): Promise<string | null | undefined> {
    const document = await this.model.collection.findOne({ _id: sessionId } as never, {
      projection: { ctrRev: 1 },
    });
    if (!document) return undefined;
    return typeof document.ctrRev === 'string' ? document.ctrRev : null;
  }

  private atRevision(sessionId: string, revision: string | null): never {
    return { _id: sessionId, ctrRev: revision === null ? { $exists: false } : revision } as never;
  }

  /** Nothing matched: this very write landed before (a retry of it), or another one came first. */
  private async outcomeAfterMiss(sessionId: string, revision: CounterRevision): Promise<CounterOutcome> {
    const current = await this.counterRevisionOf(sessionId);
    if (current === undefined) return 'missing';
    return current === revision.next ? 'applied' : 'conflict';
  }

  async changeFields(sessionId: string, change: FieldChange): Promise<void> {
    const update: Record<string, unknown> = {};
    if (change.set && Object.keys(change.set).length > 0) update.$set = change.set;
    if (change.unset && change.unset.length > 0)
      update.$unset = Object.fromEntries(change.unset.map((field) => [field, '']));
    if (Object.keys(update).length === 0) return;
    await this.model.collection.updateOne({ _id: sessionId } as never, update);
  }

  /** Ends an active session (`endTs` and `dur` together); false when already ended or unknown. */
  async endIfActive(sessionId: string, at: Date): Promise<boolean> {
    const current = await this.model
      .findOne({ _id: sessionId, ...ACTIVE }, { ts: 1 })
      .lean<Pick<SessionDocument, 'ts'>>()
      .exec();
    if (!current) return false;
    const duration = Math.max(0, Math.round((at.getTime() - new Date(current.ts).getTime()) / 1000));
    await this.model.updateOne({ _id: sessionId }, { $set: { endTs: at, dur: duration } }).exec();
    return true;
  }

  /**
   * Closes the assist that started at `since` (if still current): logged in `assists` once.
   * `resolvesHelp`: the help request it answered is resolved with it.
   */
  async closeAssist(sessionId: string, since: Date, assist: Assist, resolvesHelp: boolean): Promise<boolean> {
    const current = await this.model
      .findOne({ _id: sessionId }, { assistingSince: 1 })
      .lean<Pick<SessionDocument, 'assistingSince'>>()
      .exec();
    // The assist that started at `since`, or an earlier start: a takeover whose write was given up
    // (DATABASE_ERROR) can still land later and leave its older start time over this one's. A later
    // start is another assist, left alone.
    if (!current?.assistingSince || new Date(current.assistingSince).getTime() > since.getTime())
      return false;
    // Built field by field: $addToSet compares whole elements, so a retry must send the same one.
    const record = {
      adminId: assist.adminId,
      adminName: assist.adminName,
      start: assist.start,
      end: assist.end,
    };
    await this.model.collection.updateOne(
      { _id: sessionId } as never,
      {
        // The human help given ends the help request (a new request opens it again).
        $set: { adminAssisted: true, ...(resolvesHelp ? { helpState: 'resolved' } : {}) },
        $unset: { assistingSince: '', assistingAdminId: '', assistingAdminName: '', assistDeadline: '' },
        // Identical on a retry: a late first attempt landing after it cannot log the assist twice.
        $addToSet: { assists: record },
      } as never,
    );
    return true;
  }

  /** Takes the share token unless the session already has one; returns the token in force. */
  async shareTokenOrSet(sessionId: string, token: string, expiresAt?: Date): Promise<string | undefined> {
    const current = await this.model
      .findOne({ _id: sessionId }, { shareToken: 1, shareExpiresAt: 1 })
      .lean<Pick<SessionDocument, 'shareToken' | 'shareExpiresAt'>>()
      .exec();
    if (!current) return undefined;
    const live =
      current.shareToken && (!current.shareExpiresAt || new Date(current.shareExpiresAt) > new Date());
    if (live) return current.shareToken;
    await this.model
      .updateOne(
        { _id: sessionId },
        expiresAt
          ? { $set: { shareToken: token, shareExpiresAt: expiresAt } }
          : { $set: { shareToken: token }, $unset: { shareExpiresAt: '' } },
      )
      .exec();
    return token;
  }

  /**
   * Takeover exclusivity through an insert on a primary key: exactly one racing insert succeeds on
   * MongoDB and on FerretDB (whose findAndModify is not atomic under concurrent writers).
   * Returns the holder of the lock: the caller when it won, otherwise the current holder.
   */
  async acquireTakeoverLock(
    sessionId: string,
    admin: { adminId: string; adminName: string },
  ): Promise<{ adminId: string; adminName: string; won: boolean }> {
    const locks = this.takeoverLocks();
    try {
      await this.retry.run('takeoverLock', () =>
        locks.insertOne({
          _id: sessionId,
          adminId: admin.adminId,
          adminName: admin.adminName,
          at: new Date(),
        }),
      );
      return { ...admin, won: true };
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      const holder = await this.retry.run('takeoverLock', () => locks.findOne({ _id: sessionId }));
      if (!holder) return this.acquireTakeoverLock(sessionId, admin);
      return { adminId: holder.adminId, adminName: holder.adminName, won: holder.adminId === admin.adminId };
    }
  }

  async releaseTakeoverLock(sessionId: string, adminId: string): Promise<void> {
    await this.retry.run('takeoverUnlock', () => this.takeoverLocks().deleteOne({ _id: sessionId, adminId }));
  }

  private takeoverLocks() {
    return this.model.db.collection<TakeoverLock>(`${this.model.collection.collectionName}_takeover_locks`);
  }

  /** The session's fields and counters (never an array of messages). */
  async findSummary(sessionId: string): Promise<SessionRecord | undefined> {
    return (await this.findWithRevision(sessionId))?.record;
  }

  /** As `findSummary`, with the counter revision read with it (null: the document has none yet). */
  async findWithRevision(
    sessionId: string,
  ): Promise<{ record: SessionRecord; counterRevision: string | null } | undefined> {
    const document = await this.retry.run('findSession', () =>
      this.model.findById(sessionId, WITHOUT_LEGACY_MESSAGES).lean<SessionDocument>().exec(),
    );
    if (!document) return undefined;
    return { record: this.toRecord(document), counterRevision: document.ctrRev ?? null };
  }

  async findByShareToken(token: string): Promise<SessionRecord | undefined> {
    const document = await this.retry.run('findByShareToken', () =>
      this.model.findOne({ shareToken: token }, WITHOUT_LEGACY_MESSAGES).lean<SessionDocument>().exec(),
    );
    return document ? this.toRecord(document) : undefined;
  }

  /**
   * The active sessions of the user (one active session per user: the older ones are ended). By
   * equality on `uid`: the one filter FerretDB hands down to PostgreSQL (an `$in` it would not).
   * Every new session asks it, so it goes to the driver directly: Mongoose's query building and
   * casting cost more than the driver's own work in a burst of new chats (issue 12), and two plain
   * fields need neither.
   */
  async findActiveOfUser(userId: string): Promise<{ id: string; startedAt: Date }[]> {
    const documents = await this.model.collection
      .find<Pick<SessionDocument, '_id' | 'ts'>>({ uid: userId, ...ACTIVE } as never, {
        projection: { _id: 1, ts: 1 },
      })
      .toArray();
    return documents.map((document) => ({ id: String(document._id), startedAt: new Date(document.ts) }));
  }

  async listByUser(userId: string, limit: number): Promise<{ sessions: SessionRecord[]; total: number }> {
    return this.list({
      filter: { userId, visibleToOwner: true },
      sortBy: 'last_activity',
      sortOrder: 'desc',
      offset: 0,
      limit,
    });
  }

  async list(query: SessionListQuery): Promise<{ sessions: SessionRecord[]; total: number }> {
    const filter = this.filterOf(query.filter);
    const direction = query.sortOrder === 'asc' ? 1 : -1;
    const [documents, total] = await Promise.all([
      this.retry.run('listSessions', () =>
        this.model
          .find(filter, WITHOUT_LEGACY_MESSAGES)
          .sort({ [SORT_FIELDS[query.sortBy]]: direction, _id: 1 })
          .skip(query.offset)
          .limit(query.limit)
          .lean<SessionDocument[]>()
          .exec(),
      ),
      this.retry.run('countSessions', () => this.model.countDocuments(filter).exec()),
    ]);
    return { sessions: documents.map((document) => this.toRecord(document)), total };
  }

  /** Active sessions idle since before `cutoff`, oldest first, at most `limit`. */
  async findIdleActive(cutoff: Date, limit: number): Promise<SessionRecord[]> {
    const documents = await this.retry.run('findIdle', () =>
      this.model
        .find({ ...ACTIVE, lastActivity: { $lt: cutoff } }, WITHOUT_LEGACY_MESSAGES)
        .sort({ lastActivity: 1 })
        .limit(limit)
        .lean<SessionDocument[]>()
        .exec(),
    );
    return documents.map((document) => this.toRecord(document));
  }

  /** Sessions an admin assists: those past their release deadline, or (at start-up) without one. */
  async findAssisted(options: {
    deadlineBefore?: Date;
    withoutDeadline?: boolean;
  }): Promise<SessionRecord[]> {
    const filter: QueryFilter<SessionDocument> = { assistingSince: { $exists: true } };
    if (options.deadlineBefore) filter.assistDeadline = { $lt: options.deadlineBefore };
    if (options.withoutDeadline) filter.assistDeadline = { $exists: false };
    const documents = await this.retry.run('findAssisted', () =>
      this.model.find(filter, WITHOUT_LEGACY_MESSAGES).lean<SessionDocument[]>().exec(),
    );
    return documents.map((document) => this.toRecord(document));
  }

  async countActive(): Promise<number> {
    return this.retry.run('countActive', () => this.model.countDocuments(ACTIVE).exec());
  }

  /** Raw query for admin metrics: sessions overlapping [start, end]. */
  async findOverlapping(start: Date, end: Date, limit: number): Promise<SessionRecord[]> {
    const documents = await this.retry.run('findOverlapping', () =>
      this.model
        .find(
          { ts: { $lte: end }, $or: [{ endTs: { $exists: false } }, { endTs: { $gte: start } }] },
          WITHOUT_LEGACY_MESSAGES,
        )
        .sort({ ts: 1, _id: 1 })
        .limit(limit)
        .lean<SessionDocument[]>()
        .exec(),
    );
    return documents.map((document) => this.toRecord(document));
  }

  /** Up to `limit` sessions that still carry a `msgs` array, with it. */
  async findLegacy(limit: number, sessionId?: string): Promise<LegacySession[]> {
    const documents = await this.retry.run('findLegacy', () =>
      this.model
        .find({ msgs: { $exists: true }, ...(sessionId ? { _id: sessionId } : {}) }, { uid: 1, msgs: 1 })
        .limit(limit)
        .lean<Pick<SessionDocument, '_id' | 'uid' | 'msgs'>[]>()
        .exec(),
    );
    return documents.map((document) => ({
      id: String(document._id),
      userId: document.uid,
      messages: Array.isArray(document.msgs) ? document.msgs : [],
    }));
  }

  /** After its messages were copied: the array goes, the count is what was copied. */
  async dropLegacyMessages(sessionId: string, messageCount: number): Promise<void> {
    await this.retry.run('dropLegacy', () =>
      this.model
        .updateOne({ _id: sessionId }, { $unset: { msgs: '' }, $max: { msgCount: messageCount } })
        .exec(),
    );
  }

  private filterOf(filter: SessionListFilter): QueryFilter<SessionDocument> {
    const query: QueryFilter<SessionDocument> = {};
    if (filter.userId !== undefined) query.uid = String(filter.userId);
    if (filter.status === 'active') query.endTs = { $exists: false };
    if (filter.status === 'ended') query.endTs = { $exists: true };
    if (filter.adminAssisted !== undefined) query.adminAssisted = filter.adminAssisted ? true : { $ne: true };
    if (filter.helpRequested !== undefined) query.helpRequested = filter.helpRequested ? true : { $ne: true };
    if (filter.helpState) query.$or = helpStateFilter(filter.helpState);
    if (filter.userIdContains && filter.userId === undefined)
      query.uid = { $regex: literalPattern(filter.userIdContains), $options: 'i' };
    if (filter.visibleToOwner) Object.assign(query, VISIBLE_TO_OWNER);
    if (filter.startFrom || filter.startTo)
      query.ts = {
        ...(filter.startFrom ? { $gte: filter.startFrom } : {}),
        ...(filter.startTo ? { $lte: filter.startTo } : {}),
      };
    return query;
  }

  toRecord(document: SessionDocument): SessionRecord {
    const respCount = document.respCount ?? 0;
    const legacyCount = Array.isArray(document.msgs) ? document.msgs.length : 0;
    return {
      id: String(document._id),
      userId: document.uid,
      name: document.nm === undefined ? undefined : this.cipher.decrypt(document.nm),
      modelId: document.modelId,
      startedAt: new Date(document.ts),
      endedAt: document.endTs ? new Date(document.endTs) : undefined,
      durationSec: document.dur,
      lastActivity: new Date(document.lastActivity ?? document.endTs ?? document.ts),
      adminAssisted: document.adminAssisted === true,
      assistingAdminId: document.assistingAdminId,
      assistingAdminName: document.assistingAdminName,
      assistingSince: document.assistingSince ? new Date(document.assistingSince) : undefined,
      assistDeadline: document.assistDeadline ? new Date(document.assistDeadline) : undefined,
      helpRequested: document.helpRequested === true,
      helpRequestedAt: document.helpRequestedAt ? new Date(document.helpRequestedAt) : undefined,
      helpState: helpStateOf(document),
      hiddenAt: document.hiddenAt ? new Date(document.hiddenAt) : undefined,
      totalTokens: document.totalTokens ?? 0,
      promptTokens: document.promptTokens ?? 0,
      completionTokens: document.completionTokens ?? 0,
      maxResponseTimeMs: document.maxRespTime ?? 0,
      // Derived when read: the sums are the truth (SPEC 8 keeps avgRespTime for earlier readers).
      avgResponseTimeMs:
        respCount > 0 ? Math.round((document.respTimeSum ?? 0) / respCount) : (document.avgRespTime ?? 0),
      responseTimeSumMs: document.respTimeSum,
      responseCount: document.respCount,
      messageCount: document.msgCount ?? legacyCount,
      shareToken: document.shareToken,
      shareExpiresAt: document.shareExpiresAt ? new Date(document.shareExpiresAt) : undefined,
      assists: document.assists ?? [],
      difyConversationId: document.difyConversationId,
    };
  }
}
