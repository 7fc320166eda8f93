import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { AppConfig, ChatboxEvents, DomainError, ErrorCode, InjectConfig, Principal } from '@chatbox/common';
import { SessionRecord, SessionRepository } from '@chatbox/storage';
import { chatEvent } from './chat-event';
import { ClientConnection } from './ports/client-connection';
import { ConnectionRegistry } from './ports/connection-registry';
import { SessionBroadcaster } from './ports/session-broadcaster';

export type LeaveReason = 'admin_leave' | 'api' | 'admin_gone';

/**
 * Human takeover (SPEC 5, 4.8): exclusive and atomic in the database. An active takeover is marked
 * by `assistingSince`; `assistingAdminId/Name` stay stored after it ends but are shown only while it
 * lasts. A takeover moves the help queue entry to `assisted`, its end to `resolved`.
 */
@Injectable()
export class TakeoverService implements OnModuleDestroy {
  private readonly logger = new Logger(TakeoverService.name);
  private readonly goneTimers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly sessions: SessionRepository,
    private readonly registry: ConnectionRegistry,
    private readonly broadcaster: SessionBroadcaster,
    private readonly events: ChatboxEvents,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  /**
   * One atomic conditional write: exactly one of several racing admins wins; the same admin again is
   * a no-op success; another admin gets CONFLICT naming the winner.
   */
  async take(admin: Principal, sessionId: string): Promise<SessionRecord> {
    const session = await this.sessions.findSummary(sessionId);
    if (!session) throw new DomainError(ErrorCode.NOT_FOUND, 'Session not found');
    if (session.endedAt) throw new DomainError(ErrorCode.SESSION_ENDED, 'Session has ended');
    if (session.assistingSince && session.assistingAdminId === admin.userId) return session;
    const lock = await this.sessions.acquireTakeoverLock(sessionId, {
      adminId: admin.userId,
      adminName: admin.name,
    });
    if (!lock.won)
      throw new DomainError(ErrorCode.CONFLICT, `Session is already assisted by ${lock.adminName}`);
    const at = new Date();
    // Conditional on no takeover yet: of two racing requests of the same admin (both hold the lock)
    // one marks the session and announces; the other finds it marked and answers quietly.
    const won = await this.sessions.updateIf(
      sessionId,
      { endTs: { $exists: false }, assistingSince: { $exists: false } },
      {
        $set: {
          assistingAdminId: admin.userId,
          assistingAdminName: admin.name,
          assistingSince: at,
          helpState: 'assisted',
        },
      },
    );
    if (!won) {
      const now = await this.sessions.findSummary(sessionId);
      if (now && !now.endedAt && now.assistingSince && now.assistingAdminId === admin.userId) return now;
      if (!now || now.endedAt) {
        await this.sessions.releaseTakeoverLock(sessionId, admin.userId);
        throw new DomainError(ErrorCode.SESSION_ENDED, 'Session has ended');
      }
      throw new DomainError(
        ErrorCode.CONFLICT,
        `Session is already assisted by ${now.assistingAdminName ?? 'another admin'}`,
      );
    }
    this.cancelGoneTimer(sessionId);
    this.events.emit({
      type: 'takeover.started',
      ...(session.helpRequestedAt
        ? { humanWaitSeconds: (at.getTime() - session.helpRequestedAt.getTime()) / 1000 }
        : {}),
    });
    this.broadcaster.toSession(sessionId, this.joinEvent(sessionId, admin));
    this.broadcaster.toDashboards(
      chatEvent('notification', 'system', {
        session_id: sessionId,
        metadata: {
          event: 'takeover_started',
          admin_id: admin.userId,
          admin_name: admin.name,
          user_id: won.userId,
        },
      }),
    );
    return won;
  }

  /** Ends the takeover: adminAssisted for good, the assist logged, everyone told. */
  async leave(admin: Principal, sessionId: string, reason: LeaveReason): Promise<void> {
    this.cancelGoneTimer(sessionId);
    const current = await this.sessions.findSummary(sessionId);
    if (!current || !current.assistingSince || current.assistingAdminId !== admin.userId)
      throw new DomainError(ErrorCode.NOT_FOUND, 'You are not assisting this session');
    const end = new Date();
    const ended = await this.sessions.updateIf(
      sessionId,
      { assistingSince: current.assistingSince, assistingAdminId: admin.userId },
      {
        // The human help given ends the help request (a new request opens it again).
        $set: { adminAssisted: true, helpState: 'resolved' },
        $unset: { assistingSince: '' },
        $push: {
          assists: {
            adminId: admin.userId,
            adminName: current.assistingAdminName ?? admin.name,
            start: current.assistingSince,
            end,
          },
        },
      },
    );
    if (!ended) return; // someone else ended it between our read and write: nothing to announce twice
    await this.sessions.releaseTakeoverLock(sessionId, admin.userId);
    this.logger.log({ sessionId, adminId: admin.userId, reason }, 'takeover ended');
    const name = current.assistingAdminName ?? admin.name;
    this.broadcaster.toSession(
      sessionId,
      chatEvent('admin_leave', 'admin', {
        session_id: sessionId,
        content: `${name} has left the conversation`,
        metadata: { admin_id: admin.userId, admin_name: name },
      }),
    );
    this.broadcaster.toDashboards(
      chatEvent('notification', 'system', {
        session_id: sessionId,
        metadata: {
          event: 'takeover_ended',
          admin_id: admin.userId,
          admin_name: name,
          user_id: current.userId,
        },
      }),
    );
  }

  /** When the assisting admin's last socket on the session goes, the takeover ends after a grace period. */
  connectionClosed(connection: ClientConnection, sessionId: string | undefined): void {
    if (!sessionId || !connection.principal.isAdmin) return;
    const stillThere = this.registry
      .connectionsOf(sessionId)
      .some((other) => other.principal.userId === connection.principal.userId && other.id !== connection.id);
    if (stillThere) return;
    void this.sessions
      .findSummary(sessionId)
      .then((session) => {
        if (!session?.assistingSince || session.assistingAdminId !== connection.principal.userId) return;
        this.cancelGoneTimer(sessionId);
        const timer = setTimeout(() => {
          this.goneTimers.delete(sessionId);
          const back = this.registry
            .connectionsOf(sessionId)
            .some((other) => other.principal.userId === connection.principal.userId);
          if (!back)
            this.leave(connection.principal, sessionId, 'admin_gone').catch((error: unknown) =>
              this.logger.warn({ err: (error as Error).message, sessionId }, 'automatic leave failed'),
            );
        }, this.config.protocol.adminGoneGraceMs);
        timer.unref();
        this.goneTimers.set(sessionId, timer);
      })
      .catch((error: unknown) =>
        this.logger.warn(
          { err: (error as Error).message, sessionId },
          'could not check the takeover after a disconnect',
        ),
      );
  }

  joinEvent(sessionId: string, admin: Principal) {
    return chatEvent('admin_join', 'admin', {
      session_id: sessionId,
      content: `${admin.name} has joined the conversation`,
      metadata: { admin_id: admin.userId, admin_name: admin.name },
    });
  }

  onModuleDestroy(): void {
    for (const timer of this.goneTimers.values()) clearTimeout(timer);
    this.goneTimers.clear();
  }

  private cancelGoneTimer(sessionId: string): void {
    const timer = this.goneTimers.get(sessionId);
    if (timer) clearTimeout(timer);
    this.goneTimers.delete(sessionId);
  }
}
