import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { AppConfig, ChatboxEvents, DomainError, ErrorCode, InjectConfig, Principal } from '@chatbox/common';
import { ConversationStore, SessionRecord, SessionRepository } from '@chatbox/storage';
import { ClientConnection } from './ports/client-connection';
import { ConnectionRegistry } from './ports/connection-registry';
import { SessionBroadcaster } from './ports/session-broadcaster';
import { AdminIdentity, DashboardChange, instant } from './session-events';

export type LeaveReason = 'admin_leave' | 'api' | 'admin_gone';

/**
 * Human takeover (SPEC 5, 4.8). Exclusive through a lock insert on the session id (the one write
 * FerretDB makes atomic); the session then records the assist (`assistingSince`, admin id and name)
 * through its write lane. A takeover moves a waiting help request to `assisted`, its end to
 * `resolved` (a takeover nobody asked for leaves the help state alone). When the assisting admin's
 * last socket goes, a release deadline is stored:
 * a timer here releases it on time, and the sweep of any instance releases what a restarted or dead
 * instance left behind, so the AI answers again.
 */
@Injectable()
export class TakeoverService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(TakeoverService.name);
  private readonly goneTimers = new Map<string, NodeJS.Timeout>();
  private sweepTimer?: NodeJS.Timeout;

  constructor(
    private readonly store: ConversationStore,
    private readonly repository: SessionRepository,
    private readonly registry: ConnectionRegistry,
    private readonly broadcaster: SessionBroadcaster,
    private readonly events: ChatboxEvents,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  /**
   * Exactly one of several racing admins wins (the lock insert); the same admin again is a no-op
   * success; another admin gets CONFLICT naming the winner.
   */
  async take(admin: Principal, sessionId: string): Promise<SessionRecord> {
    const session = await this.store.findSession(sessionId);
    if (!session) throw new DomainError(ErrorCode.NOT_FOUND, 'Session not found');
    if (session.endedAt) throw new DomainError(ErrorCode.SESSION_ENDED, 'Session has ended');
    if (session.assistingSince && session.assistingAdminId === admin.userId) return session;
    const lock = await this.repository.acquireTakeoverLock(sessionId, {
      adminId: admin.userId,
      adminName: admin.name,
    });
    if (!lock.won)
      throw new DomainError(ErrorCode.CONFLICT, `Session is already assisted by ${lock.adminName}`);
    const at = new Date();
    const marked = await this.store
      .startAssist(sessionId, { adminId: admin.userId, adminName: admin.name }, at)
      .catch((error: unknown) => {
        // Not marked (DATABASE_ERROR): the lock must not keep other admins out of an unassisted session.
        void this.repository.releaseTakeoverLock(sessionId, admin.userId).catch(() => undefined);
        throw error;
      });
    if (!marked) {
      await this.repository.releaseTakeoverLock(sessionId, admin.userId);
      throw new DomainError(ErrorCode.SESSION_ENDED, 'Session has ended');
    }
    const won = marked.session;
    // Of two racing requests of the same admin (both hold the lock) one marks and announces; the
    // other finds it marked and answers quietly.
    if (!marked.started) {
      if (won.assistingAdminId === admin.userId) return won;
      throw new DomainError(
        ErrorCode.CONFLICT,
        `Session is already assisted by ${won.assistingAdminName ?? 'another admin'}`,
      );
    }
    this.cancelGoneTimer(sessionId);
    this.events.emit({
      type: 'takeover.started',
      ...(session.helpRequestedAt
        ? { humanWaitSeconds: (at.getTime() - session.helpRequestedAt.getTime()) / 1000 }
        : {}),
    });
    const identity = { id: admin.userId, name: admin.name };
    this.broadcaster.toSession(sessionId, { kind: 'adminJoined', sessionId, admin: identity, at: instant() });
    this.toDashboards('takeoverStarted', sessionId, won.userId, identity);
    return won;
  }

  /** Ends the takeover: adminAssisted for good, the assist logged, everyone told. */
  async leave(
    admin: Pick<Principal, 'userId' | 'name'>,
    sessionId: string,
    reason: LeaveReason,
  ): Promise<void> {
    this.cancelGoneTimer(sessionId);
    const current = await this.store.findSession(sessionId);
    if (!current?.assistingSince || current.assistingAdminId !== admin.userId)
      throw new DomainError(ErrorCode.NOT_FOUND, 'You are not assisting this session');
    const ended = await this.store.endAssist(sessionId, admin.userId, new Date());
    if (!ended) return; // someone else ended it between our read and write: nothing to announce twice
    await this.repository.releaseTakeoverLock(sessionId, admin.userId);
    this.logger.log({ sessionId, adminId: admin.userId, reason }, 'takeover ended');
    const identity = { id: admin.userId, name: ended.assist.adminName };
    this.broadcaster.toSession(sessionId, { kind: 'adminLeft', sessionId, admin: identity, at: instant() });
    this.toDashboards('takeoverEnded', sessionId, current.userId, identity);
  }

  /** The assisting admin's socket bound to the session again: the release deadline is lifted. */
  adminBound(connection: ClientConnection, session: SessionRecord): void {
    if (!connection.principal.isAdmin || session.assistingAdminId !== connection.principal.userId) return;
    this.cancelGoneTimer(session.id);
    if (session.assistDeadline) this.store.setAssistDeadline(session, undefined);
  }

  /** When the assisting admin's last socket on the session goes, the takeover ends after a grace period. */
  connectionClosed(connection: ClientConnection, sessionId: string | undefined): void {
    if (!sessionId || !connection.principal.isAdmin) return;
    const stillThere = this.registry
      .connectionsOf(sessionId)
      .some((other) => other.principal.userId === connection.principal.userId && other.id !== connection.id);
    if (stillThere) return;
    void this.store
      .findSession(sessionId)
      .then((session) => {
        if (!session?.assistingSince || session.assistingAdminId !== connection.principal.userId) return;
        const deadline = new Date(Date.now() + this.config.protocol.adminGoneGraceMs);
        this.store.setAssistDeadline(session, deadline);
        this.scheduleRelease(session, deadline);
      })
      .catch((error: unknown) =>
        this.logger.warn(
          { err: (error as Error).message, sessionId },
          'could not check the takeover after a disconnect',
        ),
      );
  }

  /**
   * At start-up, an assist with no deadline belongs to an admin whose socket was on a process that is
   * gone (this one, restarted): it gets the grace period to come back, like any disconnect.
   */
  async onApplicationBootstrap(): Promise<void> {
    try {
      for (const session of await this.repository.findAssisted({ withoutDeadline: true })) {
        if (await this.registry.isSessionUserConnected(session.id, session.assistingAdminId ?? '')) continue;
        const cached = await this.store.findSession(session.id);
        if (cached)
          this.store.setAssistDeadline(cached, new Date(Date.now() + this.config.protocol.adminGoneGraceMs));
      }
    } catch (error) {
      this.logger.warn(
        { err: (error as Error).message },
        'could not check assists left by a previous process',
      );
    }
    this.sweepTimer = setInterval(() => void this.releaseExpired(), this.config.session.cleanupIntervalMs);
    this.sweepTimer.unref();
  }

  /** Releases every assist whose deadline passed (stored: deadlines of any instance, before a restart too). */
  async releaseExpired(now = new Date()): Promise<string[]> {
    const released: string[] = [];
    try {
      for (const session of await this.repository.findAssisted({ deadlineBefore: now })) {
        const adminId = session.assistingAdminId ?? '';
        if (await this.registry.isSessionUserConnected(session.id, adminId)) continue;
        await this.leave(
          { userId: adminId, name: session.assistingAdminName ?? adminId },
          session.id,
          'admin_gone',
        )
          .then(() => released.push(session.id))
          .catch((error: unknown) =>
            this.logger.warn(
              { err: (error as Error).message, sessionId: session.id },
              'automatic leave failed',
            ),
          );
      }
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'assist sweep failed; next interval retries');
    }
    return released;
  }

  onModuleDestroy(): void {
    clearInterval(this.sweepTimer);
    for (const timer of this.goneTimers.values()) clearTimeout(timer);
    this.goneTimers.clear();
  }

  private scheduleRelease(session: SessionRecord, deadline: Date): void {
    this.cancelGoneTimer(session.id);
    const adminId = session.assistingAdminId ?? '';
    const timer = setTimeout(
      () => {
        this.goneTimers.delete(session.id);
        const back = this.registry
          .connectionsOf(session.id)
          .some((other) => other.principal.userId === adminId);
        if (!back)
          this.leave(
            { userId: adminId, name: session.assistingAdminName ?? adminId },
            session.id,
            'admin_gone',
          ).catch((error: unknown) =>
            this.logger.warn(
              { err: (error as Error).message, sessionId: session.id },
              'automatic leave failed',
            ),
          );
      },
      Math.max(0, deadline.getTime() - Date.now()),
    );
    timer.unref();
    this.goneTimers.set(session.id, timer);
  }

  private toDashboards(
    change: DashboardChange,
    sessionId: string,
    userId: string,
    admin: AdminIdentity,
  ): void {
    this.broadcaster.toDashboards({
      kind: 'dashboardUpdate',
      change,
      sessionId,
      userId,
      admin,
      at: instant(),
    });
  }

  private cancelGoneTimer(sessionId: string): void {
    const timer = this.goneTimers.get(sessionId);
    if (timer) clearTimeout(timer);
    this.goneTimers.delete(sessionId);
  }
}
