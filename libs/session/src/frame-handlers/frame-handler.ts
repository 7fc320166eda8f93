import { InboundFrame, InboundType } from '../inbound-frame';
import { ClientConnection } from '../ports/client-connection';

/** A client frame of the given type(s). */
export type FrameOf<T extends InboundType> = InboundFrame & { type: T };

/**
 * What one client frame type does (SPEC 4.4–4.7), with only the dependencies it needs. `ChatService`
 * dispatches each frame to the handler registered for its type; errors are thrown as DomainError.
 */
export abstract class FrameHandler<T extends InboundType = InboundType> {
  abstract readonly types: readonly T[];
  /** Whether a `session_id` on the frame may bind the socket first (not for `ping`). */
  readonly bindsSession: boolean = true;

  abstract handle(connection: ClientConnection, frame: FrameOf<T>): Promise<void>;
}

/** DI token of every registered `FrameHandler`. */
export const FRAME_HANDLERS = Symbol('FRAME_HANDLERS');

/** Handlers by frame type: exactly one per type in `types`, or it throws (at start-up). */
export function handlersByType(
  handlers: readonly FrameHandler[],
  types: readonly InboundType[],
): Map<InboundType, FrameHandler> {
  const byType = new Map<InboundType, FrameHandler>();
  for (const handler of handlers)
    for (const type of handler.types) {
      if (byType.has(type)) throw new Error(`Two handlers for ${type} frames`);
      byType.set(type, handler);
    }
  const missing = types.filter((type) => !byType.has(type));
  if (missing.length > 0) throw new Error(`No handler for ${missing.join(', ')} frames`);
  return byType;
}
