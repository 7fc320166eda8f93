import { newSessionId, randomHex } from './ids';

describe('randomHex', () => {
  it('gives the asked number of bytes as lowercase hex, never the same value twice', () => {
    // Enough values to refill the pool several times: no value repeats across refills.
    const values = Array.from({ length: 3_000 }, () => randomHex(12));
    expect(values.every((value) => /^[0-9a-f]{24}$/.test(value))).toBe(true);
    expect(new Set(values).size).toBe(values.length);
  });

  it('serves a request larger than its pool directly', () => {
    expect(randomHex(5_000)).toMatch(/^[0-9a-f]{10000}$/);
  });

  it('makes session ids of 32 hex characters', () => {
    expect(newSessionId()).toMatch(/^[0-9a-f]{32}$/);
  });
});
