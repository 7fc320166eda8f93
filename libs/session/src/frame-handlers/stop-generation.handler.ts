import { Injectable } from '@nestjs/common';
import { DomainError, ErrorCode } from '@chatbox/common';
import { ClientConnection } from '../ports/client-connection';
import { ReplyService } from '../reply/reply.service';
import { instant } from '../session-events';
import { FrameHandler } from './frame-handler';

/** `stop_generation`: answered by the reply's done frame (`stopped`), or by a notice when nothing streams. */
@Injectable()
export class StopGenerationHandler extends FrameHandler<'stop_generation'> {
  readonly types = ['stop_generation'] as const;

  constructor(private readonly replies: ReplyService) {
    super();
  }

  async handle(connection: ClientConnection): Promise<void> {
    if (!connection.sessionId) throw new DomainError(ErrorCode.NOT_FOUND, 'No session to stop');
    if (this.replies.stop(connection.sessionId)) return;
    connection.send({ kind: 'nothingToStop', sessionId: connection.sessionId, at: instant() });
  }
}
