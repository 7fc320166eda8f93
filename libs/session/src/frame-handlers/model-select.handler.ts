import { Injectable } from '@nestjs/common';
import { DomainError, ErrorCode } from '@chatbox/common';
import { LlmService } from '@chatbox/llm';
import { ClientConnection } from '../ports/client-connection';
import { SessionBroadcaster } from '../ports/session-broadcaster';
import { instant, ModelChanged } from '../session-events';
import { SessionService } from '../session.service';
import { ActiveSession } from './active-session';
import { FrameHandler, FrameOf } from './frame-handler';

/** `model_select`: the session's model for the next replies, announced to every socket of it. */
@Injectable()
export class ModelSelectHandler extends FrameHandler<'model_select'> {
  readonly types = ['model_select'] as const;

  constructor(
    private readonly llm: LlmService,
    private readonly activeSession: ActiveSession,
    private readonly sessions: SessionService,
    private readonly broadcaster: SessionBroadcaster,
  ) {
    super();
  }

  async handle(connection: ClientConnection, frame: FrameOf<'model_select'>): Promise<void> {
    if (!this.llm.hasModel(frame.model_id))
      throw new DomainError(ErrorCode.INVALID_MODEL, `Unknown model ${frame.model_id}`);
    const session = await this.activeSession.of(connection);
    await this.sessions.selectModel(session, frame.model_id);
    const answer: ModelChanged = {
      kind: 'modelChanged',
      sessionId: session.id,
      modelId: frame.model_id,
      at: instant(),
    };
    connection.send(answer);
    this.broadcaster.toSession(session.id, answer, connection.id);
  }
}
