import { Injectable, Logger } from '@nestjs/common';
import { MongoError, MongoNetworkError, MongoServerSelectionError } from 'mongodb';
import { AppConfig, DomainError, ErrorCode, InjectConfig } from '@chatbox/common';

/** Server codes that mean "try again": not primary, shutting down, timeouts, host unreachable. */
const TRANSIENT_CODES = new Set([6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 50]);
const TRANSIENT_LABELS = ['RetryableWriteError', 'TransientTransactionError', 'ResetPool'];

export function isTransientMongoError(thrown: unknown): boolean {
  const error = unwrapBulkWriteError(thrown);
  if (error instanceof MongoNetworkError || error instanceof MongoServerSelectionError) return true;
  if (error instanceof MongoError) {
    if (typeof error.code === 'number' && TRANSIENT_CODES.has(error.code)) return true;
    if (TRANSIENT_LABELS.some((label) => error.hasErrorLabel(label))) return true;
    return TRANSIENT_MESSAGE.test(error.message);
  }
  return error instanceof Error && TRANSIENT_MESSAGE.test(error.message);
}

/**
 * The driver reports a network failure of `insertMany` (and every bulk write) as a bulk write error
 * without write errors, the original error in `errorResponse`: that one says whether trying again
 * can help. Any other error is returned as it is.
 */
export function unwrapBulkWriteError(error: unknown): unknown {
  const { writeErrors, errorResponse } = (error ?? {}) as { writeErrors?: unknown; errorResponse?: unknown };
  const noDocumentFailed = Array.isArray(writeErrors) && writeErrors.length === 0;
  return noDocumentFailed && errorResponse instanceof Error ? errorResponse : error;
}

/**
 * Network trouble, and FerretDB-on-SQLite's "database is locked" (SQLITE_BUSY: another writer held
 * the lock past busy_timeout), which succeeds when tried again.
 */
const TRANSIENT_MESSAGE =
  /timed out|ECONNRESET|ECONNREFUSED|EPIPE|buffering timed out|SQLITE_BUSY|database is locked|connection .* closed/i;

/** The database did not answer (after the retries): the caller may wait and try again. */
export function isDatabaseUnavailable(error: unknown): boolean {
  return (
    (error instanceof DomainError && error.code === ErrorCode.DATABASE_ERROR) || isTransientMongoError(error)
  );
}

export type OperationObserver = (operation: string, seconds: number, failed: boolean) => void;

/**
 * Retries transient failures `MONGO_RETRY_ATTEMPTS` times with exponential backoff (×2, capped);
 * anything else fails at once. Writes passed here must be idempotent (guards on ids or conditions).
 */
@Injectable()
export class MongoRetry {
  private readonly logger = new Logger(MongoRetry.name);
  private observer?: OperationObserver;
  /** When an operation last succeeded (performance.now()): proof the database answers. */
  private lastSuccess = Number.NEGATIVE_INFINITY;

  constructor(@InjectConfig() private readonly config: AppConfig) {}

  /** Whether an operation succeeded within the last `withinMs`. */
  answeredWithin(withinMs: number): boolean {
    return performance.now() - this.lastSuccess <= withinMs;
  }

  private succeeded(operation: string, started: number): void {
    this.lastSuccess = performance.now();
    this.observer?.(operation, (this.lastSuccess - started) / 1000, false);
  }

  /** Lets the metrics module time every operation without storage knowing Prometheus. */
  observe(observer: OperationObserver): void {
    this.observer = observer;
  }

  /** One attempt, timed like the others: for writes that must not be repeated blindly. */
  async once<T>(operation: string, attempt: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await attempt();
      this.succeeded(operation, started);
      return result;
    } catch (error) {
      this.observer?.(operation, (performance.now() - started) / 1000, true);
      throw error;
    }
  }

  async run<T>(operation: string, attempt: () => Promise<T>): Promise<T> {
    const { retryAttempts, retryDelayMs } = this.config.mongo;
    const cap = this.config.protocol.mongoRetryCapMs;
    const started = performance.now();
    for (let retry = 0; ; retry++) {
      try {
        const result = await attempt();
        this.succeeded(operation, started);
        return result;
      } catch (error) {
        const transient = isTransientMongoError(error);
        if (retry >= retryAttempts || !transient) {
          this.observer?.(operation, (performance.now() - started) / 1000, true);
          // Clients get DATABASE_ERROR (never INTERNAL_ERROR) when the database is out of reach.
          if (transient)
            throw new DomainError(
              ErrorCode.DATABASE_ERROR,
              'The database is unavailable; try again shortly',
              {
                cause: error,
              },
            );
          throw error;
        }
        const delay = Math.min(retryDelayMs * 2 ** retry, cap);
        this.logger.warn(
          { operation, retry: retry + 1, delayMs: delay, err: (error as Error).message },
          'retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}

/** MongoDB reports 11000; FerretDB 1.24 reports a unique violation on update as InternalError (code 1). */
export function isDuplicateKeyError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (
    (error as { code?: number }).code === 11000 ||
    /UNIQUE constraint failed|duplicate key/i.test(error.message)
  );
}
