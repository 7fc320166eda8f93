import { InboundType } from '../inbound-frame';
import { FrameHandler, handlersByType } from './frame-handler';

class Stub extends FrameHandler {
  constructor(readonly types: readonly InboundType[]) {
    super();
  }

  async handle(): Promise<void> {}
}

describe('handlersByType', () => {
  it('registers each handler under every type it names', () => {
    const text = new Stub(['user_message']);
    const files = new Stub(['file_upload', 'voice_message']);
    const byType = handlersByType([text, files], ['user_message', 'file_upload', 'voice_message']);
    expect(byType.get('user_message')).toBe(text);
    expect(byType.get('file_upload')).toBe(files);
    expect(byType.get('voice_message')).toBe(files);
  });

  it('refuses a frame type without a handler, and a type with two', () => {
    expect(() => handlersByType([new Stub(['ping'])], ['ping', 'end_session'])).toThrow(
      'No handler for end_session frames',
    );
    expect(() => handlersByType([new Stub(['ping']), new Stub(['ping'])], ['ping'])).toThrow(
      'Two handlers for ping frames',
    );
  });
});
