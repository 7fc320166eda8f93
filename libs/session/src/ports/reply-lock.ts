import { Injectable } from '@nestjs/common';

/** Gives the lock back; never rejects. */
export type ReplyLockRelease = () => Promise<void>;

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
}

@Injectable()
export class InProcessReplyLock extends ReplyLock {
  acquire(): Promise<ReplyLockRelease> {
    return Promise.resolve(() => Promise.resolve());
  }
}
