import type { Collection } from 'mongodb';
import type { ProtocolLimits } from '@chatbox/common';
import { isDuplicateKeyError, isTransientMongoError, MongoRetry, unwrapBulkWriteError } from './mongo-retry';

export type InsertOutcome = 'added' | 'duplicate';

export interface InsertBatcherOptions {
  /** Documents per insert command at most. */
  maxDocuments: number;
  /** Insert commands on their way at once; further documents wait and leave together with the next. */
  maxInFlight: number;
}

/** Sends one unordered insert of `documents`; rejects like the driver's `insertMany`. */
export type InsertMany<T> = (documents: T[]) => Promise<unknown>;

interface Waiting<T> {
  document: T;
  resolve: (outcome: InsertOutcome) => void;
  reject: (error: unknown) => void;
}

/** One document's failure inside a bulk write error (the driver's `WriteError`). */
interface WriteFailure {
  index: number;
  code?: number;
  errmsg?: string;
  err?: { errmsg?: string; code?: number };
}

/**
 * Gathers the inserts of every session into unordered multi-document insert commands: a document goes
 * out at once when fewer than `maxInFlight` commands are on their way, and otherwise waits and leaves
 * with the ones that arrived meanwhile. Idle, nothing waits; under a burst of chats, a few commands
 * carry hundreds of messages instead of one command each (every command costs the embedded database a
 * transaction and both processes a round trip: docs/decisions/0009).
 *
 * Each document keeps its own outcome: `added`, `duplicate` (already stored: a retry or a replay), or
 * its own error. A batch refused as a whole for a reason other than the network is sent again one
 * document per command, so one document the database refuses never fails the others with it.
 */
export class InsertBatcher<T> {
  private waiting: Waiting<T>[] = [];
  private inFlight = 0;

  constructor(
    private readonly insertMany: InsertMany<T>,
    private readonly options: InsertBatcherOptions,
  ) {}

  insert(document: T): Promise<InsertOutcome> {
    return new Promise<InsertOutcome>((resolve, reject) => {
      this.waiting.push({ document, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.options.maxDocuments);
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async send(batch: Waiting<T>[]): Promise<void> {
    try {
      await this.insertMany(batch.map((entry) => entry.document));
      for (const entry of batch) entry.resolve('added');
    } catch (thrown) {
      const error = unwrapBulkWriteError(thrown);
      const failures = writeFailuresOf(error);
      if (failures) {
        settleEach(batch, failures, error);
        return;
      }
      const duplicate = isDuplicateKeyError(error);
      if (batch.length === 1 && duplicate) batch[0].resolve('duplicate');
      else if (batch.length > 1 && !duplicate && !isTransientMongoError(error))
        await Promise.all(batch.map((entry) => this.send([entry])));
      // The network: the same for every document of the command.
      else for (const entry of batch) entry.reject(error);
    }
  }
}

/** The per-document failures of an unordered insert; undefined when the command failed as a whole. */
function writeFailuresOf(error: unknown): WriteFailure[] | undefined {
  const failures = (error as { writeErrors?: unknown } | undefined)?.writeErrors;
  if (!Array.isArray(failures) || failures.length === 0) return undefined;
  return failures.filter(
    (failure): failure is WriteFailure => typeof (failure as WriteFailure)?.index === 'number',
  );
}

/** Documents without a failure landed (unordered: the others did not stop them). */
function settleEach<T>(batch: Waiting<T>[], failures: WriteFailure[], error: unknown): void {
  const byIndex = new Map(failures.map((failure) => [failure.index, writeFailureAsError(failure)]));
  batch.forEach((entry, index) => {
    const failure = byIndex.get(index);
    if (!failure) entry.resolve('added');
    else if (isDuplicateKeyError(failure)) entry.resolve('duplicate');
    else entry.reject(Object.assign(failure, { cause: error }));
  });
}

/** One document's failure of a bulk write as an Error with its code (what `isDuplicateKeyError` reads). */
export function writeFailureAsError(value: unknown): Error {
  const failure = value as Partial<WriteFailure>;
  const error = new Error(failure.errmsg ?? failure.err?.errmsg ?? '');
  (error as { code?: number }).code = failure.code ?? failure.err?.code;
  return error;
}

/**
 * The batcher of one collection: unordered `insertMany` commands, each one attempt counted under
 * `operation` (the documents' lanes retry), sized by the protocol limits.
 */
export function collectionInsertBatcher<T>(
  collection: Pick<Collection, 'insertMany'>,
  retry: MongoRetry,
  operation: string,
  limits: Pick<ProtocolLimits, 'insertBatchDocuments' | 'insertBatchesInFlight'>,
): InsertBatcher<T> {
  return new InsertBatcher<T>(
    (documents) =>
      retry.once(operation, () => collection.insertMany(documents as never[], { ordered: false })),
    { maxDocuments: limits.insertBatchDocuments, maxInFlight: limits.insertBatchesInFlight },
  );
}
