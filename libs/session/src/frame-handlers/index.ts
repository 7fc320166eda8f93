import { Provider, Type } from '@nestjs/common';
import { ActiveSession } from './active-session';
import { AdminLeaveHandler } from './admin-leave.handler';
import { EndSessionHandler } from './end-session.handler';
import { FileMessageHandler } from './file-message.handler';
import { FRAME_HANDLERS, FrameHandler } from './frame-handler';
import { HelpRequestHandler } from './help-request.handler';
import { MessageTurn } from './message-turn';
import { ModelSelectHandler } from './model-select.handler';
import { PingHandler } from './ping.handler';
import { StopGenerationHandler } from './stop-generation.handler';
import { StreamResumeHandler } from './stream-resume.handler';
import { TypingIndicatorHandler } from './typing-indicator.handler';
import { UserMessageHandler } from './user-message.handler';

export * from './frame-handler';

/** One handler per client frame type; `ChatService` checks at start-up that every type has one. */
const HANDLERS: Type<FrameHandler>[] = [
  PingHandler,
  UserMessageHandler,
  ModelSelectHandler,
  HelpRequestHandler,
  FileMessageHandler,
  TypingIndicatorHandler,
  StopGenerationHandler,
  StreamResumeHandler,
  EndSessionHandler,
  AdminLeaveHandler,
];

/** The handlers, what they share, and `FRAME_HANDLERS` (all of them, for `ChatService`). */
export const frameHandlerProviders: Provider[] = [
  ActiveSession,
  MessageTurn,
  ...HANDLERS,
  { provide: FRAME_HANDLERS, inject: HANDLERS, useFactory: (...handlers: FrameHandler[]) => handlers },
];
