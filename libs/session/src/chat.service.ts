import { Inject, Injectable } from '@nestjs/common';
import { LlmService } from '@chatbox/llm';
import { FRAME_HANDLERS, FrameHandler, handlersByType } from './frame-handlers';
import { INBOUND_TYPES, InboundFrame, InboundType } from './inbound-frame';
import { ClientConnection } from './ports/client-connection';
import { ReplyService } from './reply/reply.service';
import { instant } from './session-events';
import { SocketBinding } from './socket-binding';

/**
 * A socket's life in the session layer (SPEC 4.4–4.7): connect, one frame at a time, disconnect.
 * Each frame goes to the handler registered for its type (libs/session/src/frame-handlers); errors
 * are thrown as DomainError and mapped to `error` frames by the gateway, for the causing socket only.
 */
@Injectable()
export class ChatService {
  private readonly handlers: Map<InboundType, FrameHandler>;

  constructor(
    private readonly binding: SocketBinding,
    private readonly replies: ReplyService,
    private readonly llm: LlmService,
    @Inject(FRAME_HANDLERS) handlers: FrameHandler[],
  ) {
    this.handlers = handlersByType(handlers, INBOUND_TYPES);
  }

  /** Right after the upgrade: register, bind if the query named a bindable session, greet. */
  async connect(connection: ClientConnection, requestedSessionId?: string): Promise<void> {
    const session = await this.binding.open(connection, requestedSessionId);
    connection.send({
      kind: 'greeting',
      userId: connection.principal.userId,
      sessionId: session?.id ?? connection.nextSessionId,
      // [ext] The id is announced, not created yet: nothing to read or share under it before a message.
      newSession: !session,
      models: this.llm.models(),
      modelId: session?.modelId ?? this.llm.defaultModelId,
      ...(session?.assistingSince && session.assistingAdminName
        ? { assistingAdmin: { id: session.assistingAdminId ?? '', name: session.assistingAdminName } }
        : {}),
      at: instant(),
    });
    if (session) this.replies.catchUp(connection, session.id);
  }

  disconnect(connection: ClientConnection): void {
    this.binding.close(connection);
  }

  async handle(connection: ClientConnection, frame: InboundFrame): Promise<void> {
    const handler = this.handlers.get(frame.type) as FrameHandler;
    if (handler.bindsSession) await this.binding.bindFromFrame(connection, frame);
    await handler.handle(connection, frame);
  }
}
