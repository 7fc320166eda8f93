import type { SessionRepository } from './session.repository';

export interface ActiveSession {
  id: string;
  startedAt: Date;
}

interface Waiting {
  resolve: (sessions: ActiveSession[]) => void;
  reject: (error: unknown) => void;
}

/**
 * The active sessions of users, looked up together: every new session asks whether its user has
 * others to end (one active session per user), and a burst of new chats asks it hundreds of times
 * at once. The users asking within `windowMs` share one query (`uid` in the list), which on the
 * embedded database is one scan of the sessions instead of one per user.
 */
export class ActiveSessionsBatch {
  private readonly waiting = new Map<string, Waiting[]>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly sessions: SessionRepository,
    private readonly windowMs: number,
  ) {}

  of(userId: string): Promise<ActiveSession[]> {
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(userId) ?? [];
      list.push({ resolve, reject });
      this.waiting.set(userId, list);
      if (!this.timer) {
        this.timer = setTimeout(() => void this.lookUp(), this.windowMs);
        this.timer.unref();
      }
    });
  }

  private async lookUp(): Promise<void> {
    this.timer = undefined;
    const batch = new Map(this.waiting);
    this.waiting.clear();
    try {
      const found = await this.sessions.findActiveOfUsers([...batch.keys()]);
      for (const [userId, list] of batch) {
        const ofUser = found.filter((session) => session.userId === userId);
        for (const waiter of list) waiter.resolve(ofUser);
      }
    } catch (error) {
      for (const list of batch.values()) for (const waiter of list) waiter.reject(error);
    }
  }
}
