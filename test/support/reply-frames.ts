import type { Frame, TestClient } from './ws-client';

/** ai_response frames of one reply, in the order a socket received them. */
export function replyFrames(client: TestClient, messageId: string): Frame[] {
  return client.frames.filter(
    (frame) => frame.type === 'ai_response' && frame.metadata?.message_id === messageId,
  );
}

/** The text of a reply's frames (catch-up included), the done frame left out. */
export function textOf(frames: Frame[]): string {
  return frames
    .filter((frame) => frame.metadata?.done !== 'true')
    .map((frame) => frame.content ?? '')
    .join('');
}

export function seqsOf(frames: Frame[]): number[] {
  return frames.map((frame) => Number(frame.metadata?.seq));
}
