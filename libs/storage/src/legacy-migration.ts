import { Injectable, Logger } from '@nestjs/common';
import { AppConfig, InjectConfig } from '@chatbox/common';
import type { MessageDocument } from './message.schema';
import { inferType, MessageRepository } from './message.repository';
import { LegacySession, SessionRepository } from './session.repository';

/**
 * Sessions of earlier versions (this service before SPEC 8's revision, and the earlier Go service)
 * carry their messages in a `msgs` array. Each is copied into `messages` (ids kept, or derived from
 * the session and position exactly as earlier versions of this service answered them), then the array
 * is removed. Idempotent: a copy interrupted at any point is completed by the next run (inserts of
 * messages already there are no-ops), so several instances starting together are safe.
 */
@Injectable()
export class LegacyMigration {
  private readonly logger = new Logger(LegacyMigration.name);

  constructor(
    private readonly sessions: SessionRepository,
    private readonly messages: MessageRepository,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  /** Migrates every session that still has an array; returns how many. */
  async run(): Promise<number> {
    let migrated = 0;
    for (;;) {
      const batch = await this.sessions.findLegacy(this.config.protocol.legacyMigrationBatch);
      if (batch.length === 0) break;
      for (const session of batch) await this.migrate(session);
      migrated += batch.length;
      this.logger.log({ migrated }, 'migrating message arrays of earlier versions into messages');
    }
    if (migrated > 0) this.logger.log({ migrated }, 'message arrays migrated');
    return migrated;
  }

  private async migrate(session: LegacySession): Promise<void> {
    const documents = session.messages.map((message, position): MessageDocument => {
      const sender = message.sender ?? 'user';
      return {
        _id: message.id ?? `${session.id}-${position}`,
        sid: session.id,
        uid: session.userId,
        seq: position,
        type: message.type ?? inferType(sender, message.fileId),
        // Copied as stored: ciphertext stays ciphertext, plaintext of earlier versions stays readable.
        content: typeof message.content === 'string' ? message.content : '',
        ts: message.ts ? new Date(message.ts) : new Date(0),
        sender,
        ...(message.fileId ? { fileId: message.fileId } : {}),
        ...(message.fileUrl ? { fileUrl: message.fileUrl } : {}),
        ...(message.meta && typeof message.meta === 'object' ? { meta: message.meta } : {}),
      };
    });
    await this.messages.insertDocuments(documents);
    await this.sessions.dropLegacyMessages(session.id, documents.length);
  }
}
