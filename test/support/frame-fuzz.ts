import fc from 'fast-check';
import { parseFrame } from '../../libs/gateway/src/frame-parser';
import { Frame, TestClient } from './ws-client';

/** Frames a client may legitimately send, the starting points of the mutations. */
const VALID_FRAMES: Record<string, unknown>[] = [
  { type: 'user_message', content: 'hello there' },
  { type: 'user_message', content: 'with metadata', metadata: { source: 'web', count: 2 } },
  { type: 'ping' },
  { type: 'model_select', model_id: 'demo' },
  { type: 'help_request', content: 'a human please' },
  { type: 'typing_indicator', metadata: { typing: 'true' } },
  { type: 'stop_generation' },
  { type: 'end_session' },
  { type: 'stream_resume', metadata: { message_id: 'm-1', last_seq: '0' } },
  { type: 'file_upload', file_id: 'f'.repeat(32), content: 'a file' },
  { type: 'voice_message', file_id: 'v'.repeat(32) },
  { type: 'admin_leave' },
];

const ENVELOPE_KEYS = ['type', 'session_id', 'content', 'file_id', 'file_url', 'model_id', 'metadata'];
const ECHOED_KEYS = ['sender', 'timestamp', 'id', 'user_id', 'models', 'error'];
const HOSTILE_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '$where',
  '$set',
  'a.b',
  '',
  ' ',
  '\u0000',
  'k'.repeat(70),
  'transcription',
  'admin_name',
  'status',
];

/** Nested containers `depth` levels deep. */
const nested = (depth: number, leaf: unknown): unknown =>
  depth === 0 ? leaf : depth % 2 === 0 ? [nested(depth - 1, leaf)] : { n: nested(depth - 1, leaf) };

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('x'.repeat(10_001), 'é'.repeat(1_001), '\ud800', '2026-02-31T25:61:00Z', 'demo', ''),
  fc.constant([]),
  fc.constant({}),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 25 }),
  fc.dictionary(fc.constantFrom(...HOSTILE_KEYS), fc.string({ maxLength: 8 }), { maxKeys: 4 }),
  fc.integer({ min: 1, max: 40 }).map((depth) => nested(depth, 'deep')),
  fc.jsonValue({ maxDepth: 3 }),
);

type Mutation = (frame: Record<string, unknown>) => Record<string, unknown>;

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc
    .tuple(fc.constantFrom(...ENVELOPE_KEYS, ...ECHOED_KEYS, ...HOSTILE_KEYS), hostileValue)
    .map(([key, value]): Mutation => (frame) => ({ ...frame, [key]: value })),
  fc.constantFrom(...ENVELOPE_KEYS).map(
    (key): Mutation =>
      (frame) =>
        Object.fromEntries(Object.entries(frame).filter(([k]) => k !== key)),
  ),
  fc
    .tuple(fc.constantFrom(...HOSTILE_KEYS, 'typing', 'message_id', 'last_seq', 'note'), hostileValue)
    .map(([key, value]): Mutation => (frame) => ({
      ...frame,
      metadata: { ...((frame.metadata as object) ?? {}), [key]: value },
    })),
  fc.integer({ min: 19, max: 30 }).map((count): Mutation => (frame) => ({
    ...frame,
    metadata: Object.fromEntries(Array.from({ length: count }, (_, index) => [`k${index}`, `${index}`])),
  })),
  fc
    .oneof(fc.string({ maxLength: 30 }), fc.integer(), fc.constantFrom('ai_response', 'error', 'pong'))
    .map((type): Mutation => (frame) => ({ ...frame, type })),
);

/** A valid frame with one to three mutations, serialised; sometimes the text itself is damaged. */
const mutatedFrame: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom(...VALID_FRAMES),
    fc.array(mutation, { minLength: 1, maxLength: 3 }),
    fc.oneof(
      { weight: 4, arbitrary: fc.constant((text: string) => text) },
      {
        weight: 1,
        arbitrary: fc.nat().map((cut) => (text: string) => text.slice(0, cut % Math.max(1, text.length))),
      },
      {
        weight: 1,
        arbitrary: fc.constant((text: string) => text.replace('{', '{"__proto__":{"polluted":1},')),
      },
      {
        weight: 1,
        arbitrary: fc.constant((text: string) => text.replace('{', '{"type":"ping",')), // duplicate key
      },
    ),
  )
  .map(([frame, mutations, damage]) =>
    damage(JSON.stringify(mutations.reduce((at, apply) => apply(at), frame))),
  );

/** Frames from nothing: any text, any JSON, records of envelope-shaped keys with any values. */
const randomFrame: fc.Arbitrary<string> = fc.oneof(
  fc.string(),
  fc.json(),
  fc
    .record(
      {
        type: fc.oneof(
          fc.constantFrom(...VALID_FRAMES.map((frame) => frame.type as string), 'bogus'),
          fc.string(),
          fc.integer(),
        ),
        session_id: fc.oneof(fc.string({ maxLength: 200 }), fc.integer(), fc.constant(null)),
        content: fc.oneof(fc.string(), fc.integer(), fc.array(fc.string())),
        model_id: fc.oneof(fc.string(), fc.constant('demo')),
        metadata: fc.oneof(
          fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.object())),
          fc.string(),
          fc.constant(null),
        ),
        sender: fc.oneof(fc.constantFrom('user', 'admin', 'ai', 'system'), fc.string()),
      },
      { requiredKeys: [] },
    )
    .map((value) => JSON.stringify(value)),
);

/** `count` frames, half random and half mutated valid ones, reproducible from `seed`. */
export function fuzzFrames(count: number, seed: number): string[] {
  return fc.sample(fc.oneof(randomFrame, mutatedFrame), { numRuns: count, seed });
}

/** Frames the server sends as the direct answer to a client frame. */
const ANSWER_TYPES = ['error', 'pong', 'connection_status', 'notification'];
/**
 * Frames whose answer may come later than the next frame's: an accepted `user_message` is answered
 * by its streamed reply, and `stop_generation` / `stream_resume` during that reply by its frames.
 */
const LATE_ANSWER_TYPES = ['user_message', 'stop_generation', 'stream_resume'];

export interface FuzzReport {
  sent: number;
  /** Frames without a direct answer (only LATE_ANSWER_TYPES may be among them). */
  lateAnswered: { type: string; frame: string }[];
  internalErrors: Frame[];
  replies: number;
}

function typeOf(raw: string): unknown {
  try {
    const parsed = JSON.parse(raw) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as { type?: unknown }).type : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sends every frame followed by a marker frame (a ping with an unknown field `fuzz_marker_<i>`,
 * answered by an INVALID_FORMAT error naming that field). Frames of one socket are handled in order,
 * so whatever arrives between two markers' errors answers the frame between them. Returns which
 * frames had no direct answer and every INTERNAL_ERROR seen.
 */
export async function fuzzSocket(client: TestClient, frames: string[], batch = 250): Promise<FuzzReport> {
  const markerOf = (index: number) => `fuzz_marker_${index}`;
  const isMarker = (frame: Frame, index: number) =>
    frame.type === 'error' && frame.error?.message === `unknown field "${markerOf(index)}"`;
  const start = client.frames.length;
  for (let from = 0; from < frames.length; from += batch) {
    const last = Math.min(frames.length, from + batch) - 1;
    for (let index = from; index <= last; index++) {
      client.send(frames[index]);
      client.send({ type: 'ping', [markerOf(index)]: 1 });
    }
    await client.waitFor((frame) => isMarker(frame, last), 60_000, start);
  }
  const received = client.frames.slice(start);
  const lateAnswered: FuzzReport['lateAnswered'] = [];
  let cursor = 0;
  frames.forEach((raw, index) => {
    const end = received.findIndex((frame, position) => position >= cursor && isMarker(frame, index));
    const between = received.slice(cursor, end);
    cursor = end + 1;
    const type = typeOf(raw);
    if (type === 'typing_indicator' || between.some((frame) => ANSWER_TYPES.includes(frame.type))) return;
    lateAnswered.push({ type: String(type), frame: raw });
  });
  return {
    sent: frames.length,
    lateAnswered,
    internalErrors: received.filter((frame) => frame.error?.code === 'INTERNAL_ERROR'),
    replies: received.filter((frame) => frame.type === 'ai_response' && frame.metadata?.done === 'true')
      .length,
  };
}

/** Whether the gateway accepts the frame (so no direct error answers it). */
function isValidFrame(raw: string): boolean {
  try {
    parseFrame(raw);
    return true;
  } catch {
    return false;
  }
}

/**
 * The fuzz verdict: no INTERNAL_ERROR; every frame answered directly, except valid frames whose
 * answer is a streamed reply (an accepted message, a stop or resume during a reply); a reply came
 * for the accepted messages; the socket is still open and answers a ping.
 */
export async function expectFuzzSurvived(client: TestClient, report: FuzzReport): Promise<void> {
  expect(report.internalErrors).toEqual([]);
  expect(
    report.lateAnswered.filter(
      ({ type, frame }) => !LATE_ANSWER_TYPES.includes(type) || !isValidFrame(frame),
    ),
  ).toEqual([]);
  if (report.lateAnswered.some(({ type }) => type === 'user_message'))
    expect(report.replies).toBeGreaterThan(0);
  const from = client.frames.length;
  client.send({ type: 'ping' });
  await client.waitFor((frame) => frame.type === 'pong', 10_000, from);
  expect(client.socket.readyState).toBe(client.socket.OPEN);
}
