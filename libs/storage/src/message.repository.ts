import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { Model } from 'mongoose';
import { ContentCipher } from './content-cipher';
import { createMissingIndexes } from './ensure-indexes';
import {
  CHECKPOINT_MODEL,
  CheckpointDocument,
  MESSAGE_INDEXES,
  MESSAGE_MODEL,
  MessageDocument,
} from './message.schema';
import { AppConfig, InjectConfig } from '@chatbox/common';
import { collectionInsertBatcher, InsertBatcher, InsertOutcome, writeFailureAsError } from './insert-batcher';
import { isDuplicateKeyError, MongoRetry } from './mongo-retry';
import { ReplyCheckpoint, Sender, StoredMessage, StoredMessageType } from './session.model';

/**
 * Metadata the server writes about a message (numbers, states, ids): stored as is. Every other value
 * (transcriptions, file names, anything a client sent) carries user text and is encrypted like
 * `content` when a key is set (SPEC 8).
 */
const PLAIN_META_KEYS = new Set([
  'model_id',
  'status',
  'tokens',
  'prompt_tokens',
  'completion_tokens',
  'response_time_ms',
  'first_token_ms',
  'tokens_estimated',
  'error',
  'stopped',
  'reason',
  'mime_type',
  'file_size',
  'reply_id',
]);

/** What a session's counters are recomputed from: the stored messages themselves. */
export interface MessageTotals {
  count: number;
  lastAt?: Date;
  promptTokens: number;
  completionTokens: number;
  responseTimeSum: number;
  responseCount: number;
  maxResponseTime: number;
}

export type { InsertOutcome } from './insert-batcher';

/** The `messages` and `reply_checkpoints` collections (SPEC 8). Mongoose lives here and nowhere else. */
@Injectable()
export class MessageRepository implements OnModuleInit {
  /** The inserts of every session, gathered into few commands (see `InsertBatcher`). */
  private readonly inserts: InsertBatcher<MessageDocument>;

  constructor(
    @InjectModel(MESSAGE_MODEL) private readonly model: Model<MessageDocument>,
    @InjectModel(CHECKPOINT_MODEL) private readonly checkpoints: Model<CheckpointDocument>,
    private readonly cipher: ContentCipher,
    private readonly retry: MongoRetry,
    @InjectConfig() config: AppConfig,
  ) {
    this.inserts = collectionInsertBatcher(
      this.model.collection,
      retry,
      'insertMessageBatch',
      config.protocol,
    );
  }

  async onModuleInit(): Promise<void> {
    await this.retry.run('createIndexes', () => createMissingIndexes(this.model.collection, MESSAGE_INDEXES));
  }

  /** Insert only; a message already there (a retry, a replay, a late duplicate) is left as it is. */
  async insert(sessionId: string, userId: string, message: StoredMessage): Promise<InsertOutcome> {
    return this.insertDocument(this.toDocument(sessionId, userId, message));
  }

  /** Raw insert of an already mapped document (journal replay, migration). */
  insertDocument(document: MessageDocument): Promise<InsertOutcome> {
    return this.inserts.insert(document);
  }

  /** Many at once, unordered: duplicates are skipped, everything else lands. */
  async insertDocuments(documents: MessageDocument[]): Promise<void> {
    if (documents.length === 0) return;
    try {
      await this.retry.run('insertMessages', () =>
        this.model.collection.insertMany(documents as never[], { ordered: false }),
      );
    } catch (error) {
      const writeErrors = (error as { writeErrors?: unknown[] }).writeErrors;
      const onlyDuplicates =
        Array.isArray(writeErrors) &&
        writeErrors.length > 0 &&
        writeErrors.every((writeError) => isDuplicateKeyError(writeFailureAsError(writeError)));
      if (!onlyDuplicates && !isDuplicateKeyError(error)) throw error;
    }
  }

  /** The whole history of a session in order. */
  async listBySession(sessionId: string): Promise<StoredMessage[]> {
    const documents = await this.retry.run('listMessages', () =>
      this.model.find({ sid: sessionId }).sort({ seq: 1, ts: 1, _id: 1 }).lean<MessageDocument[]>().exec(),
    );
    return documents.map((document) => this.toMessage(document));
  }

  /** The last `limit` messages of a session, oldest first (model context, the in-memory window). */
  async lastOfSession(sessionId: string, limit: number): Promise<StoredMessage[]> {
    const documents = await this.retry.run('recentMessages', () =>
      this.model
        .find({ sid: sessionId })
        .sort({ seq: -1, ts: -1, _id: -1 })
        .limit(limit)
        .lean<MessageDocument[]>()
        .exec(),
    );
    return documents.reverse().map((document) => this.toMessage(document));
  }

  async findInSession(sessionId: string, messageId: string): Promise<StoredMessage | undefined> {
    const document = await this.retry.run('findMessage', () =>
      this.model.findOne({ _id: messageId, sid: sessionId }).lean<MessageDocument>().exec(),
    );
    return document ? this.toMessage(document) : undefined;
  }

  async sessionReferencesFile(sessionId: string, fileId: string): Promise<boolean> {
    const found = await this.retry.run('findFileMessage', () =>
      this.model.exists({ sid: sessionId, fileId }).exec(),
    );
    return found !== null;
  }

  /** Which of these file ids some stored message refers to. */
  async referencedFileIds(fileIds: string[]): Promise<Set<string>> {
    if (fileIds.length === 0) return new Set();
    const documents = await this.retry.run('findFileMessages', () =>
      this.model
        .find({ fileId: { $in: fileIds } }, { fileId: 1 })
        .lean<Pick<MessageDocument, 'fileId'>[]>()
        .exec(),
    );
    return new Set(documents.map((document) => String(document.fileId)));
  }

  /** Sums over the stored messages of a session: the truth the session counters are rebuilt from. */
  async totalsOf(sessionId: string): Promise<MessageTotals> {
    const documents = await this.model
      .find({ sid: sessionId }, { ts: 1, sender: 1, meta: 1 })
      .lean<Pick<MessageDocument, 'ts' | 'sender' | 'meta'>[]>()
      .exec();
    const totals: MessageTotals = {
      count: documents.length,
      promptTokens: 0,
      completionTokens: 0,
      responseTimeSum: 0,
      responseCount: 0,
      maxResponseTime: 0,
    };
    for (const document of documents) {
      const at = new Date(document.ts);
      if (!totals.lastAt || at > totals.lastAt) totals.lastAt = at;
      const meta = document.meta ?? {};
      totals.promptTokens += wholeNumber(meta.prompt_tokens);
      totals.completionTokens += wholeNumber(meta.completion_tokens);
      if (document.sender === 'ai' && meta.response_time_ms !== undefined) {
        const responseTime = wholeNumber(meta.response_time_ms);
        totals.responseTimeSum += responseTime;
        totals.responseCount++;
        totals.maxResponseTime = Math.max(totals.maxResponseTime, responseTime);
      }
    }
    return totals;
  }

  /** Replaces the checkpoint of a streaming reply (one document per reply, by message id). */
  async saveCheckpointDocument(document: CheckpointDocument): Promise<void> {
    await this.checkpoints.collection.replaceOne({ _id: document._id } as never, document as never, {
      upsert: true,
    });
  }

  async deleteCheckpoint(messageId: string): Promise<void> {
    await this.checkpoints.collection.deleteOne({ _id: messageId } as never);
  }

  async listCheckpoints(): Promise<ReplyCheckpoint[]> {
    const documents = await this.retry.run('listCheckpoints', () =>
      this.checkpoints.find({}).lean<CheckpointDocument[]>().exec(),
    );
    return documents.map((document) => this.toCheckpoint(document));
  }

  toCheckpoint(document: CheckpointDocument): ReplyCheckpoint {
    return {
      sessionId: document.sid,
      message: this.toMessage(document.message),
      userId: document.uid,
      owner: document.owner,
      updatedAt: new Date(document.at),
    };
  }

  toDocument(sessionId: string, userId: string, message: StoredMessage): MessageDocument {
    return {
      _id: message.id,
      sid: sessionId,
      uid: userId,
      seq: message.seq,
      type: message.type,
      content: this.cipher.encrypt(message.content),
      ts: message.timestamp,
      sender: message.sender,
      ...(message.fileId ? { fileId: message.fileId } : {}),
      ...(message.fileUrl ? { fileUrl: message.fileUrl } : {}),
      ...(message.meta && Object.keys(message.meta).length > 0 ? { meta: this.sealMeta(message.meta) } : {}),
    };
  }

  toMessage(document: MessageDocument): StoredMessage {
    const sender = (document.sender ?? 'user') as Sender;
    return {
      id: String(document._id),
      seq: document.seq,
      type: (document.type as StoredMessageType | undefined) ?? inferType(sender, document.fileId),
      content: typeof document.content === 'string' ? this.cipher.decrypt(document.content) : '',
      timestamp: new Date(document.ts),
      sender,
      ...(document.fileId ? { fileId: document.fileId } : {}),
      ...(document.fileUrl ? { fileUrl: document.fileUrl } : {}),
      ...(document.meta ? { meta: this.openMeta(document.meta) } : {}),
    };
  }

  private sealMeta(meta: Record<string, string>): Record<string, string> {
    if (!this.cipher.enabled) return meta;
    return Object.fromEntries(
      Object.entries(meta).map(([key, value]) => [
        key,
        PLAIN_META_KEYS.has(key) ? value : this.cipher.encrypt(value),
      ]),
    );
  }

  private openMeta(meta: Record<string, string>): Record<string, string> {
    return Object.fromEntries(
      Object.entries(meta).map(([key, value]) => [
        key,
        PLAIN_META_KEYS.has(key) || typeof value !== 'string' ? value : this.cipher.decrypt(value),
      ]),
    );
  }
}

/** Type of a message stored without one (earlier versions): files, AI replies, user text. */
export function inferType(sender: string, fileId: string | undefined): StoredMessageType {
  if (fileId) return 'file_upload';
  return sender === 'ai' ? 'ai_response' : 'user_message';
}

function wholeNumber(value: string | undefined): number {
  const parsed = Number(value);
  return Number.isFinite(parsed) && parsed > 0 ? Math.round(parsed) : 0;
}
