import { alternatingTurns, estimateTokens, lastUserText, STAFF_PREFIX, toProviderTurn } from './turns';

describe('toProviderTurn', () => {
  it('sends staff turns as assistant turns with the staff prefix', () => {
    expect(toProviderTurn({ role: 'assistant', content: 'Hi, Anna here', staff: true })).toEqual({
      role: 'assistant',
      content: `${STAFF_PREFIX}Hi, Anna here`,
    });
    expect(toProviderTurn({ role: 'user', content: 'q' })).toEqual({ role: 'user', content: 'q' });
  });
});

describe('alternatingTurns', () => {
  it('merges consecutive same-role turns and starts with a user turn', () => {
    expect(
      alternatingTurns([
        { role: 'assistant', content: 'Welcome' },
        { role: 'user', content: 'a' },
        { role: 'user', content: 'b' },
        { role: 'assistant', content: 'c' },
        { role: 'assistant', content: 'd', staff: true },
        { role: 'user', content: 'e' },
      ]),
    ).toEqual([
      { role: 'user', content: 'a\n\nb' },
      { role: 'assistant', content: `c\n\n${STAFF_PREFIX}d` },
      { role: 'user', content: 'e' },
    ]);
  });

  it('drops empty turns and does not mutate its input', () => {
    const history = [
      { role: 'user' as const, content: 'a' },
      { role: 'assistant' as const, content: '  ' },
      { role: 'user' as const, content: 'b' },
    ];
    expect(alternatingTurns(history)).toEqual([{ role: 'user', content: 'a\n\nb' }]);
    expect(history[0].content).toBe('a');
  });

  it('returns nothing for an empty history', () => {
    expect(alternatingTurns([])).toEqual([]);
  });
});

describe('lastUserText', () => {
  it('is the newest user turn', () => {
    expect(
      lastUserText({
        modelId: 'm',
        userId: 'u',
        sessionId: 's',
        history: [
          { role: 'user', content: 'old' },
          { role: 'assistant', content: 'answer' },
          { role: 'user', content: 'new' },
        ],
      }),
    ).toBe('new');
  });
});

describe('estimateTokens', () => {
  it('is characters / 4 rounded up', () => {
    expect(estimateTokens('')).toBe(0);
    expect(estimateTokens('abcd')).toBe(1);
    expect(estimateTokens('abcde')).toBe(2);
  });
});
