import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { Model } from 'mongoose';
import { ContentCipher, createMissingIndexes, isDuplicateKeyError, MongoRetry } from '@chatbox/storage';
import { UPLOAD_INDEXES, UPLOAD_MODEL, UploadDocument } from './upload.schema';

/** An uploaded file as services see it. */
export interface UploadRecord {
  id: string;
  userId: string;
  filename: string;
  mime: string;
  size: number;
  key: string;
  createdAt: Date;
}

/** All MongoDB access for `uploads`. Mongoose lives here and nowhere else in the files module. */
@Injectable()
export class UploadsRepository implements OnModuleInit {
  constructor(
    @InjectModel(UPLOAD_MODEL) private readonly model: Model<UploadDocument>,
    private readonly retry: MongoRetry,
    private readonly cipher: ContentCipher,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.retry.run('createIndexes', () => createMissingIndexes(this.model.collection, UPLOAD_INDEXES));
  }

  async insert(record: UploadRecord): Promise<void> {
    const document: UploadDocument = {
      _id: record.id,
      uid: record.userId,
      // A file name is user text: encrypted at rest like message content (SPEC 8).
      filename: this.cipher.encrypt(record.filename),
      mime: record.mime,
      size: record.size,
      key: record.key,
      ts: record.createdAt,
    };
    // A server-generated _id makes the insert idempotent under retry: a duplicate key means it landed.
    await this.retry.run('insertUpload', async () => {
      try {
        await this.model.collection.insertOne(document as never);
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
      }
    });
  }

  async findById(id: string): Promise<UploadRecord | undefined> {
    const document = await this.retry.run('findUpload', () =>
      this.model.findById(id).lean<UploadDocument>().exec(),
    );
    return document ? this.toRecord(document) : undefined;
  }

  /** Bytes of every upload the user keeps. */
  async totalSizeOf(userId: string): Promise<number> {
    const [row] = await this.retry.run('sumUploads', () =>
      this.model
        .aggregate<{ total: number }>([
          { $match: { uid: userId } },
          { $group: { _id: null, total: { $sum: '$size' } } },
        ])
        .exec(),
    );
    return row?.total ?? 0;
  }

  /** Uploads made before `before`, in id order after `afterId` (paging through a sweep). */
  async findOlderThan(before: Date, limit: number, afterId?: string): Promise<UploadRecord[]> {
    const documents = await this.retry.run('findOldUploads', () =>
      this.model
        .find({ ts: { $lt: before }, ...(afterId ? { _id: { $gt: afterId } } : {}) })
        .sort({ _id: 1 })
        .limit(limit)
        .lean<UploadDocument[]>()
        .exec(),
    );
    return documents.map((document) => this.toRecord(document));
  }

  async delete(id: string): Promise<void> {
    await this.retry.run('deleteUpload', () => this.model.deleteOne({ _id: id }).exec());
  }

  /** The upload when `userId` owns it; another user's id answers exactly like an unknown one. */
  async findOwned(id: string, userId: string): Promise<UploadRecord | undefined> {
    const document = await this.retry.run('findUpload', () =>
      this.model.findOne({ _id: id, uid: userId }).lean<UploadDocument>().exec(),
    );
    return document ? this.toRecord(document) : undefined;
  }

  private toRecord(document: UploadDocument): UploadRecord {
    return {
      id: String(document._id),
      userId: document.uid,
      filename: this.cipher.decrypt(document.filename),
      mime: document.mime,
      size: document.size,
      key: document.key,
      createdAt: new Date(document.ts),
    };
  }
}
