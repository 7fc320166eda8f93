import { Injectable } from '@nestjs/common';
import { DomainError, ErrorCode, Principal } from '@chatbox/common';
import { ConversationStore } from '@chatbox/storage';
import { SessionBroadcaster } from './ports/session-broadcaster';
import { instant } from './session-events';

/**
 * The help queue (SPEC 5 `help_state`): a help request is `open`, an admin's takeover makes it
 * `assisted`, the takeover's end or an admin's resolve makes it `resolved`. Only a session with a
 * help request has a state (a takeover nobody asked for has none). Resolving while an admin still
 * assists is allowed: the request is handled, the admin stays. Dashboards hear of a resolve
 * (`helpResolved`).
 */
@Injectable()
export class HelpQueueService {
  constructor(
    private readonly store: ConversationStore,
    private readonly broadcaster: SessionBroadcaster,
  ) {}

  /** Idempotent: resolving a resolved request changes nothing and announces nothing. */
  async resolve(admin: Principal, sessionId: string): Promise<void> {
    const session = await this.store.findSession(sessionId);
    if (!session) throw new DomainError(ErrorCode.NOT_FOUND, 'Session not found');
    const result = await this.store.resolveHelp(session);
    if (!result) throw new DomainError(ErrorCode.CONFLICT, 'This session has no help request to resolve');
    if (!result.changed) return;
    this.broadcaster.toDashboards({
      kind: 'dashboardUpdate',
      change: 'helpResolved',
      sessionId,
      userId: session.userId,
      admin: { id: admin.userId, name: admin.name },
      at: instant(),
    });
  }
}
