import { isServerMetadataKey } from '@chatbox/session';
import { FRAME_CASES } from '../../../test/support/frame-cases';
import { frameText, OutboundEvent, renderFrame, ServerFrame } from './frame-mapper';

const cases: [string, OutboundEvent, ServerFrame][] = Object.entries(FRAME_CASES).flatMap(([kind, list]) =>
  list.map(([event, frame]): [string, OutboundEvent, ServerFrame] => [kind, event, frame]),
);

describe('frame mapper', () => {
  it('has a case for every event kind', () => {
    for (const [kind, list] of Object.entries(FRAME_CASES))
      expect({ kind, cases: list.length > 0 }).toEqual({ kind, cases: true });
  });

  it.each(cases)('renders %s as exactly its frame (SPEC 4.2 envelope)', (_kind, event, frame) => {
    expect(renderFrame(event)).toEqual(frame);
  });

  it.each(cases)('%s: the frame takes its timestamp from the event, never from the clock', (_kind, event) => {
    expect(renderFrame(event).timestamp).toBe(event.at);
  });

  it('writes only server-owned metadata keys, besides a stored message’s own meta and an alert’s facts', () => {
    for (const [kind, event] of cases) {
      const passedThrough = new Set(
        Object.keys(('meta' in event && event.meta) || ('facts' in event && event.facts) || {}),
      );
      const written = Object.keys(renderFrame(event).metadata ?? {}).filter((key) => !passedThrough.has(key));
      expect({ kind, notServerOwned: written.filter((key) => !isServerMetadataKey(key)) }).toEqual({
        kind,
        notServerOwned: [],
      });
    }
  });

  it('serialises an event once, however many sockets it goes to', () => {
    const event: OutboundEvent = { kind: 'pong', sessionId: 's1', at: '2024-05-01T10:00:00.000Z' };
    const stringify = jest.spyOn(JSON, 'stringify');
    try {
      const texts = [frameText(event), frameText(event), frameText(event)];
      expect(stringify).toHaveBeenCalledTimes(1);
      expect(texts.map((text) => JSON.parse(text))).toEqual(Array(3).fill(renderFrame(event)));
    } finally {
      stringify.mockRestore();
    }
  });
});
