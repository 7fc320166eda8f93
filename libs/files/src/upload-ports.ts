import { Injectable } from '@nestjs/common';
import { ConversationStore } from '@chatbox/storage';

/** Whether stored messages still point at uploads: the clean-up removes only those none references. */
export abstract class UploadReferenceChecker {
  /** The subset of `fileIds` some stored message references. */
  abstract referencedAmong(fileIds: string[]): Promise<Set<string>>;

  async isReferenced(fileId: string): Promise<boolean> {
    return (await this.referencedAmong([fileId])).has(fileId);
  }
}

/** References of the stored messages (SPEC 8 `messages`), and of those still on their way there. */
@Injectable()
export class SessionMessageReferences extends UploadReferenceChecker {
  constructor(private readonly store: ConversationStore) {
    super();
  }

  referencedAmong(fileIds: string[]): Promise<Set<string>> {
    return this.store.referencedFileIds(fileIds);
  }
}
