import { isDuplicateKeyError, isTransientMongoError } from './mongo-retry';

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
      const error = commandErrorOf(thrown);
      const failures = writeFailuresOf(error);
      if (failures) {
        settleEach(batch, failures, error);
        return;
      }
      if (batch.length > 1 && !isTransientMongoError(error) && !isDuplicateKeyError(error)) {
        await Promise.all(batch.map((entry) => this.send([entry])));
        return;
      }
      // A single document's duplicate, or the network: the same for every document of the command.
      for (const entry of batch)
        if (isDuplicateKeyError(error) && batch.length === 1) entry.resolve('duplicate');
        else entry.reject(error);
    }
  }
}

/**
 * The driver reports a network failure of `insertMany` as a bulk write error without write errors,
 * the original error in `errorResponse`: that one says whether trying again can help.
 */
function commandErrorOf(error: unknown): unknown {
  const { writeErrors, errorResponse } = (error ?? {}) as { writeErrors?: unknown; errorResponse?: unknown };
  const noDocumentFailed = Array.isArray(writeErrors) && writeErrors.length === 0;
  return noDocumentFailed && errorResponse instanceof Error ? errorResponse : error;
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
  const byIndex = new Map(failures.map((failure) => [failure.index, failure]));
  batch.forEach((entry, index) => {
    const failure = byIndex.get(index);
    if (!failure) entry.resolve('added');
    else if (failure.code === DUPLICATE_KEY || /duplicate key/i.test(failure.errmsg ?? ''))
      entry.resolve('duplicate');
    else
      entry.reject(
        Object.assign(new Error(failure.errmsg ?? (error as Error).message), {
          code: failure.code,
          cause: error,
        }),
      );
  });
}

const DUPLICATE_KEY = 11000;
