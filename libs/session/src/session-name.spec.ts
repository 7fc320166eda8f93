import { sessionNameFrom } from './session-name';

describe('sessionNameFrom', () => {
  it.each([
    ['Hello there. How are you?', 'Hello there.'],
    ['What is this? Tell me', 'What is this?'],
    ['Wow! Great', 'Wow!'],
    ['First line\nsecond line. more', 'First line'],
    ['  padded question  ', 'padded question'],
    ['no punctuation at all', 'no punctuation at all'],
    ['Version 1.2 is out', 'Version 1.'],
  ])('%j → %j', (text, name) => expect(sessionNameFrom(text, 50)).toBe(name));

  it('cuts long text at the last space before 47 and adds ...', () => {
    const text = 'This is a rather long first sentence that keeps going beyond fifty characters';
    const name = sessionNameFrom(text, 50);
    expect(name).toBe('This is a rather long first sentence that...');
    expect([...name].length).toBeLessThanOrEqual(50);
  });

  it('keeps a name of exactly 50 characters', () => {
    const text = 'x'.repeat(50);
    expect(sessionNameFrom(text, 50)).toBe(text);
  });

  it('never splits a character (emoji are one character)', () => {
    const text = '😀'.repeat(60);
    const name = sessionNameFrom(text, 50);
    expect(name).toBe('😀'.repeat(47) + '...');
    expect(name).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });
});
