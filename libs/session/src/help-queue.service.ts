import { Injectable } from '@nestjs/common';
import { DomainError, ErrorCode, Principal } from '@chatbox/common';
import { ConversationStore } from '@chatbox/storage';
import { chatEvent } from './chat-event';
import { SessionBroadcaster } from './ports/session-broadcaster';

/**
 * The help queue (SPEC 5 `help_state`): a help request is `open`, an admin's takeover makes it
 * `assisted`, the takeover's end or an admin's resolve makes it `resolved`. Dashboards hear of a
 * resolve through a `notification` with `metadata.event:"help_resolved"`.
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
    this.broadcaster.toDashboards(
      chatEvent('notification', 'system', {
        session_id: sessionId,
        metadata: {
          event: 'help_resolved',
          user_id: session.userId,
          admin_id: admin.userId,
          admin_name: admin.name,
        },
      }),
    );
  }
}
