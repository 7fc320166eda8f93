import { Injectable } from '@nestjs/common';

/** Gives the lock back; never rejects. */
export type ReplyLockRelease = () => Promise<void>;

/** A place among a session's replies (running or waiting) counted on every instance. */
export interface SharedReplySlot {
  /** Idempotent. */
  release(): void;
}

/**
 * One reply at a time per session across instances (SPEC 10). In one process the reply queue of
 * `ReplyService` already serialises replies, so the in-process lock is free; multi-instance mode
 * holds a Redis lock per session around each reply run.
 */
export abstract class ReplyLock {
  abstract acquire(sessionId: string): Promise<ReplyLockRelease>;

  /**
   * Whether the next reply of a session may run in another process: it reads the context from the
   * database, so a finished reply's write should land before the lock is released.
   */
  get sharedAcrossInstances(): boolean {
    return false;
  }

  /**
   * Whether a reply of the session runs on another instance (or waits there for its write to land).
   * `whenUnknown` is the answer while Redis cannot say. One process: never (its own replies are
   * known to `ReplyService`).
   */
  isHeld(_sessionId: string, _whenUnknown = true): Promise<boolean> {
    return Promise.resolve(false);
  }

  /**
   * Takes one of the session's `max` reply places shared by every instance; undefined when they are
   * all taken. One process: the reply queue's own count is the bound, nothing is shared.
   */
  reserveSlot(_sessionId: string, _max: number): Promise<SharedReplySlot | undefined> {
    return Promise.resolve({ release: () => undefined });
  }
}

@Injectable()
export class InProcessReplyLock extends ReplyLock {
  acquire(): Promise<ReplyLockRelease> {
    return Promise.resolve(() => Promise.resolve());
  }
}
