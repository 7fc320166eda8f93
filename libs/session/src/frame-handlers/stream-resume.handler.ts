import { Injectable } from '@nestjs/common';
import { DomainError, ErrorCode } from '@chatbox/common';
import { ClientConnection } from '../ports/client-connection';
import { ReplyService } from '../reply/reply.service';
import { FrameHandler, FrameOf } from './frame-handler';

/** `stream_resume`: the frames of a reply after `last_seq`, or its stored message once it is over. */
@Injectable()
export class StreamResumeHandler extends FrameHandler<'stream_resume'> {
  readonly types = ['stream_resume'] as const;

  constructor(private readonly replies: ReplyService) {
    super();
  }

  /** The gateway checked `resume` (message id, last seq): only the session is looked at here. */
  async handle(connection: ClientConnection, { resume }: FrameOf<'stream_resume'>): Promise<void> {
    if (!connection.sessionId) throw new DomainError(ErrorCode.NOT_FOUND, 'Session not found');
    if (!(await this.replies.resume(connection, connection.sessionId, resume.messageId, resume.lastSeq)))
      throw new DomainError(ErrorCode.NOT_FOUND, 'Reply not found');
  }
}
