import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { Model, UpdateQuery, QueryFilter } from 'mongoose';
import { newSessionId } from '@chatbox/common';
import { ContentCipher } from './content-cipher';
import { createMissingIndexes } from './ensure-indexes';
import { isDuplicateKeyError, MongoRetry } from './mongo-retry';
import { MessageDocument, SESSION_INDEXES, SESSION_MODEL, SessionDocument } from './session.schema';
import {
  HELP_STATES,
  HelpState,
  MessageCounters,
  PushResult,
  SessionFieldUpdate,
  SessionListFilter,
  SessionListQuery,
  SessionRecord,
  SessionSortField,
  Sender,
  StoredMessage,
  StoredMessageType,
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
 * Documents written before `helpState` existed: the state follows from the older fields, and the
 * list filter below matches exactly what `helpStateOf` derives.
 */
const LEGACY_HELP_STATE: Record<HelpState, QueryFilter<SessionDocument>> = {
  open: { helpRequested: true, adminAssisted: { $ne: true }, assistingSince: { $exists: false } },
  assisted: { assistingSince: { $exists: true } },
  resolved: { helpRequested: true, adminAssisted: true, assistingSince: { $exists: false } },
};

function helpStateOf(document: SessionDocument): HelpState | undefined {
  if (HELP_STATES.includes(document.helpState as HelpState)) return document.helpState as HelpState;
  if (document.assistingSince) return 'assisted';
  if (document.helpRequested !== true) return undefined;
  return document.adminAssisted === true ? 'resolved' : 'open';
}

/** Regular-expression text matching `text` literally. */
function literalPattern(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

interface TakeoverLock {
  _id: string;
  adminId: string;
  adminName: string;
  at: Date;
}

export interface CreateSessionInput {
  userId: string;
  modelId?: string;
  at?: Date;
  helpRequested?: boolean;
}

/** All MongoDB access for sessions. Mongoose lives here and nowhere else. */
@Injectable()
export class SessionRepository implements OnModuleInit {
  private readonly writeChains = new Map<string, Promise<void>>();

  constructor(
    @InjectModel(SESSION_MODEL) private readonly model: Model<SessionDocument>,
    private readonly cipher: ContentCipher,
    private readonly retry: MongoRetry,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.ensureIndexes();
  }

  async ensureIndexes(): Promise<void> {
    await this.retry.run('createIndexes', () =>
      createMissingIndexes(
        this.model.collection,
        SESSION_INDEXES.map(({ key, name, unique, sparse }) => ({
          key,
          name,
          ...(unique ? { unique } : {}),
          ...(sparse ? { sparse } : {}),
        })),
      ),
    );
  }

  async create(input: CreateSessionInput): Promise<SessionRecord> {
    const at = input.at ?? new Date();
    const document: SessionDocument = {
      _id: newSessionId(),
      uid: input.userId,
      ...(input.modelId ? { modelId: input.modelId } : {}),
      msgs: [],
      ts: at,
      lastActivity: at,
      adminAssisted: false,
      helpRequested: input.helpRequested ?? false,
      ...(input.helpRequested ? { helpRequestedAt: at } : {}),
      totalTokens: 0,
      promptTokens: 0,
      completionTokens: 0,
      maxRespTime: 0,
      avgRespTime: 0,
      respTimeSum: 0,
      respCount: 0,
      msgCount: 0,
    };
    // insertOne with a server-generated _id is idempotent under retry: a duplicate key means it landed.
    await this.retry.run('insertSession', async () => {
      try {
        await this.model.collection.insertOne(document as never);
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
      }
    });
    return this.toRecord(document);
  }

  /**
   * One `$push` per stored message with `$set lastActivity`, `$inc` counters and `$max` response time.
   * Guarded on the message id, so a retried write never stores the message twice.
   */
  async pushMessage(
    sessionId: string,
    message: StoredMessage,
    counters: MessageCounters = {},
  ): Promise<PushResult> {
    const stored = this.toMessageDocument(message);
    const prompt = counters.promptTokens ?? 0;
    const completion = counters.completionTokens ?? 0;
    const update: UpdateQuery<SessionDocument> = {
      $push: { msgs: stored },
      $set: { lastActivity: message.timestamp },
      $inc: {
        msgCount: 1,
        totalTokens: prompt + completion,
        promptTokens: prompt,
        completionTokens: completion,
        ...(counters.responseTimeMs !== undefined
          ? { respTimeSum: counters.responseTimeMs, respCount: 1 }
          : {}),
      },
      ...(counters.responseTimeMs !== undefined ? { $max: { maxRespTime: counters.responseTimeMs } } : {}),
    };
    const written = await this.retry.run('pushMessage', () =>
      this.model.updateOne({ _id: sessionId, 'msgs.id': { $ne: message.id } }, update).exec(),
    );
    if (written.modifiedCount === 0) {
      return (await this.exists(sessionId)) ? 'duplicate' : 'missing';
    }
    if (counters.responseTimeMs !== undefined) await this.refreshAverageResponseTime(sessionId);
    return 'added';
  }

  /**
   * FerretDB 1.24 has no arithmetic in updates (nor projections in findAndModify): the average is
   * recomputed from the sums just written. Sums are the truth; a concurrent writer converges here too.
   */
  private async refreshAverageResponseTime(sessionId: string): Promise<void> {
    const sums = await this.retry.run('readSums', () =>
      this.model.findById(sessionId, { respTimeSum: 1, respCount: 1 }).lean().exec(),
    );
    if (!sums?.respCount) return;
    const average = Math.round((sums.respTimeSum ?? 0) / sums.respCount);
    await this.retry.run('setAverage', () =>
      this.model.updateOne({ _id: sessionId }, { $set: { avgRespTime: average } }).exec(),
    );
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
    const locks = this.model.db.collection<TakeoverLock>(
      `${this.model.collection.collectionName}_takeover_locks`,
    );
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
    const locks = this.model.db.collection<TakeoverLock>(
      `${this.model.collection.collectionName}_takeover_locks`,
    );
    await this.retry.run('takeoverUnlock', () => locks.deleteOne({ _id: sessionId, adminId }));
  }

  /** Names a session once, from its first user message; encrypted like message text when a key is set. */
  async nameIfUnnamed(sessionId: string, name: string): Promise<boolean> {
    const result = await this.retry.run('nameSession', () =>
      this.model
        .updateOne(
          { _id: sessionId, nm: { $exists: false } },
          { $set: { nm: this.cipher.encrypt(name), ...(this.cipher.enabled ? { nmEnc: true } : {}) } },
        )
        .exec(),
    );
    return result.modifiedCount === 1;
  }

  /** The owner's new name for the session, encrypted like the automatic one. */
  async rename(sessionId: string, name: string): Promise<boolean> {
    const result = await this.serialised(sessionId, () =>
      this.retry.run('renameSession', () =>
        this.model
          .updateOne(
            { _id: sessionId },
            this.cipher.enabled
              ? { $set: { nm: this.cipher.encrypt(name), nmEnc: true } }
              : { $set: { nm: name }, $unset: { nmEnc: '' } },
          )
          .exec(),
      ),
    );
    return result.matchedCount === 1;
  }

  /**
   * Marks the help request resolved. `changed` is false when it already was; undefined when the
   * session does not exist or never had a help request or a takeover (nothing to resolve).
   */
  async resolveHelp(sessionId: string): Promise<{ changed: boolean; session: SessionRecord } | undefined> {
    return this.serialised(sessionId, async () => {
      const current = await this.findSummary(sessionId);
      if (!current?.helpState) return undefined;
      if (current.helpState === 'resolved') return { changed: false, session: current };
      const session = await this.conditionalUpdate(sessionId, {}, { $set: { helpState: 'resolved' } });
      return session ? { changed: true, session } : undefined;
    });
  }

  /** Takes the session off its owner's list and revokes its share link; the document stays for admins. */
  async hideFromOwner(sessionId: string, at: Date = new Date()): Promise<boolean> {
    const result = await this.serialised(sessionId, () =>
      this.retry.run('hideSession', () =>
        this.model
          .updateOne(
            { _id: sessionId, ...VISIBLE_TO_OWNER },
            { $set: { hiddenAt: at }, $unset: { shareToken: '', shareExpiresAt: '' } },
          )
          .exec(),
      ),
    );
    return result.modifiedCount === 1;
  }

  async setFields(sessionId: string, fields: SessionFieldUpdate): Promise<boolean> {
    const result = await this.retry.run('setFields', () =>
      this.model.updateOne({ _id: sessionId }, { $set: fields }).exec(),
    );
    return result.matchedCount === 1;
  }

  /**
   * Conditional update for check-then-act rules (help flag, share token, takeover end): one write
   * or nothing. MongoDB makes it atomic; FerretDB 1.24 does not (concurrent conditional updates of
   * one document can all match), so conditional writes of one session are also serialised in this
   * process. Across instances production runs on MongoDB; takeover exclusivity uses a lock insert.
   */
  async updateIf(
    sessionId: string,
    condition: QueryFilter<SessionDocument>,
    update: UpdateQuery<SessionDocument>,
  ): Promise<SessionRecord | undefined> {
    return this.serialised(sessionId, () => this.conditionalUpdate(sessionId, condition, update));
  }

  /**
   * Ends an active session in one write (`endTs` and `dur` together). Returns the ended record,
   * or undefined when it was already ended or does not exist (the first end time is kept).
   */
  async end(sessionId: string, at: Date = new Date()): Promise<SessionRecord | undefined> {
    return this.serialised(sessionId, async () => {
      const current = await this.retry.run('findSession', () =>
        this.model
          .findOne({ _id: sessionId, ...ACTIVE }, { ts: 1 })
          .lean()
          .exec(),
      );
      if (!current) return undefined;
      const duration = Math.max(0, Math.round((at.getTime() - new Date(current.ts).getTime()) / 1000));
      return this.conditionalUpdate(sessionId, ACTIVE, {
        $set: { endTs: at, dur: duration, lastActivity: at },
      });
    });
  }

  private async conditionalUpdate(
    sessionId: string,
    condition: QueryFilter<SessionDocument>,
    update: UpdateQuery<SessionDocument>,
  ): Promise<SessionRecord | undefined> {
    const document = await this.retry.run('updateIf', () =>
      this.model
        .findOneAndUpdate({ ...condition, _id: sessionId }, update, { returnDocument: 'after' })
        .lean<SessionDocument>()
        .exec(),
    );
    return document ? this.toRecord(document) : undefined;
  }

  /** Runs conditional writes of one session one after another (per-session promise chain). */
  private serialised<T>(sessionId: string, write: () => Promise<T>): Promise<T> {
    const previous = this.writeChains.get(sessionId) ?? Promise.resolve();
    const result = previous.then(write, write);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.writeChains.set(sessionId, settled);
    void settled.then(() => {
      if (this.writeChains.get(sessionId) === settled) this.writeChains.delete(sessionId);
    });
    return result;
  }

  async findById(sessionId: string): Promise<SessionRecord | undefined> {
    const document = await this.retry.run('findSession', () =>
      this.model.findById(sessionId).lean<SessionDocument>().exec(),
    );
    return document ? this.toRecord(document) : undefined;
  }

  /**
   * The session without its messages (`messages` is empty): for rule checks on the hot path, which
   * must not read and decrypt up to thousands of messages per frame. `messageCount` is the stored
   * counter (0 on a legacy document that never had one).
   */
  async findSummary(sessionId: string): Promise<SessionRecord | undefined> {
    const document = await this.retry.run('findSession', () =>
      this.model.findById(sessionId, { msgs: 0 }).lean<SessionDocument>().exec(),
    );
    return document ? this.toRecord(document) : undefined;
  }

  async exists(sessionId: string): Promise<boolean> {
    return (await this.retry.run('findSession', () => this.model.exists({ _id: sessionId }).exec())) !== null;
  }

  async findByShareToken(token: string): Promise<SessionRecord | undefined> {
    const document = await this.retry.run('findByShareToken', () =>
      this.model.findOne({ shareToken: token }).lean<SessionDocument>().exec(),
    );
    return document ? this.toRecord(document) : undefined;
  }

  /** The user's active session (one per user); the newest wins if legacy data holds several. */
  async findActiveByUser(userId: string): Promise<SessionRecord | undefined> {
    const document = await this.retry.run('findActive', () =>
      this.model
        .findOne({ uid: userId, ...ACTIVE })
        .sort({ ts: -1 })
        .lean<SessionDocument>()
        .exec(),
    );
    return document ? this.toRecord(document) : undefined;
  }

  /** Other active sessions of the user, to be ended when a new one starts. */
  async findActiveIdsByUser(userId: string, exceptId?: string): Promise<string[]> {
    const documents = await this.retry.run('findActive', () =>
      this.model
        .find({ uid: userId, ...ACTIVE, ...(exceptId ? { _id: { $ne: exceptId } } : {}) }, { _id: 1 })
        .lean()
        .exec(),
    );
    return documents.map((document) => String(document._id));
  }

  async listByUser(userId: string, limit: number): Promise<{ sessions: SessionRecord[]; total: number }> {
    return this.list({
      filter: { userId, visibleToOwner: true },
      sortBy: 'last_activity',
      sortOrder: 'desc',
      offset: 0,
      limit,
      withoutMessages: true,
    });
  }

  async list(query: SessionListQuery): Promise<{ sessions: SessionRecord[]; total: number }> {
    const filter = this.filterOf(query.filter);
    const direction = query.sortOrder === 'asc' ? 1 : -1;
    const [documents, total] = await Promise.all([
      this.retry.run('listSessions', () =>
        this.model
          .find(filter, query.withoutMessages ? { msgs: 0 } : {})
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
        .find({ ...ACTIVE, lastActivity: { $lt: cutoff } }, { msgs: 0 })
        .sort({ lastActivity: 1 })
        .limit(limit)
        .lean<SessionDocument[]>()
        .exec(),
    );
    return documents.map((document) => this.toRecord(document));
  }

  async countActive(): Promise<number> {
    return this.retry.run('countActive', () => this.model.countDocuments(ACTIVE).exec());
  }

  /** Raw query for admin metrics: sessions overlapping [start, end], without messages. */
  async findOverlapping(start: Date, end: Date, limit: number): Promise<SessionRecord[]> {
    const documents = await this.retry.run('findOverlapping', () =>
      this.model
        .find(
          { ts: { $lte: end }, $or: [{ endTs: { $exists: false } }, { endTs: { $gte: start } }] },
          { msgs: 0 },
        )
        .sort({ ts: 1, _id: 1 })
        .limit(limit)
        .lean<SessionDocument[]>()
        .exec(),
    );
    return documents.map((document) => this.toRecord(document));
  }

  /**
   * Which of these file ids a stored message references (the upload clean-up keeps those). With
   * messages in their own collection this becomes one `fileId: {$in}` query there.
   */
  async fileIdsReferencedAmong(fileIds: string[]): Promise<Set<string>> {
    if (fileIds.length === 0) return new Set();
    const documents = await this.retry.run('findFileReferences', () =>
      this.model
        .find({ 'msgs.fileId': { $in: fileIds } }, { 'msgs.fileId': 1 })
        .lean<Pick<SessionDocument, 'msgs'>[]>()
        .exec(),
    );
    const wanted = new Set(fileIds);
    return new Set(
      documents.flatMap((document) =>
        (document.msgs ?? []).flatMap((message) =>
          message.fileId && wanted.has(message.fileId) ? [message.fileId] : [],
        ),
      ),
    );
  }

  private filterOf(filter: SessionListFilter): QueryFilter<SessionDocument> {
    const query: QueryFilter<SessionDocument> = {};
    if (filter.userId !== undefined) query.uid = String(filter.userId);
    if (filter.status === 'active') query.endTs = { $exists: false };
    if (filter.status === 'ended') query.endTs = { $exists: true };
    if (filter.adminAssisted !== undefined) query.adminAssisted = filter.adminAssisted ? true : { $ne: true };
    if (filter.helpRequested !== undefined) query.helpRequested = filter.helpRequested ? true : { $ne: true };
    if (filter.helpState)
      query.$or = [
        { helpState: filter.helpState },
        { helpState: { $exists: false }, ...LEGACY_HELP_STATE[filter.helpState] },
      ];
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

  private toMessageDocument(message: StoredMessage): MessageDocument {
    return {
      id: message.id,
      type: message.type,
      content: this.cipher.encrypt(message.content),
      ts: message.timestamp,
      sender: message.sender,
      ...(message.fileId ? { fileId: message.fileId } : {}),
      ...(message.fileUrl ? { fileUrl: message.fileUrl } : {}),
      ...(message.meta && Object.keys(message.meta).length > 0 ? { meta: message.meta } : {}),
    };
  }

  private toRecord(document: SessionDocument): SessionRecord {
    const messages = (document.msgs ?? []).map((message, position) =>
      this.toMessage(document._id, message, position),
    );
    const respCount = document.respCount ?? 0;
    return {
      id: String(document._id),
      userId: document.uid,
      name: document.nm === undefined ? undefined : this.cipher.decrypt(document.nm),
      modelId: document.modelId,
      messages,
      startedAt: new Date(document.ts),
      endedAt: document.endTs ? new Date(document.endTs) : undefined,
      durationSec: document.dur,
      lastActivity: new Date(document.lastActivity ?? document.endTs ?? document.ts),
      adminAssisted: document.adminAssisted === true,
      assistingAdminId: document.assistingAdminId,
      assistingAdminName: document.assistingAdminName,
      assistingSince: document.assistingSince,
      helpRequested: document.helpRequested === true,
      helpRequestedAt: document.helpRequestedAt,
      helpState: helpStateOf(document),
      hiddenAt: document.hiddenAt,
      totalTokens: document.totalTokens ?? 0,
      promptTokens: document.promptTokens ?? 0,
      completionTokens: document.completionTokens ?? 0,
      maxResponseTimeMs: document.maxRespTime ?? 0,
      avgResponseTimeMs:
        document.avgRespTime ?? (respCount > 0 ? Math.round((document.respTimeSum ?? 0) / respCount) : 0),
      responseTimeSumMs: document.respTimeSum,
      responseCount: document.respCount,
      messageCount: document.msgCount ?? messages.length,
      shareToken: document.shareToken,
      shareExpiresAt: document.shareExpiresAt,
      assists: document.assists ?? [],
      difyConversationId: document.difyConversationId,
    };
  }

  private toMessage(sessionId: string, message: MessageDocument, position: number): StoredMessage {
    const sender = (message.sender ?? 'user') as Sender;
    return {
      // Legacy messages have no id: derive a stable one from the session and position.
      id: message.id ?? `${sessionId}-${position}`,
      type:
        (message.type as StoredMessageType | undefined) ??
        (message.fileId ? 'file_upload' : sender === 'ai' ? 'ai_response' : 'user_message'),
      content: typeof message.content === 'string' ? this.cipher.decrypt(message.content) : '',
      timestamp: new Date(message.ts),
      sender,
      fileId: message.fileId,
      fileUrl: message.fileUrl,
      meta: message.meta,
    };
  }
}
