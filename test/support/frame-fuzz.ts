import fc from 'fast-check';
import { DomainError } from '@chatbox/common';
import { parseFrame } from '../../libs/gateway/src/frame-parser';
import { PNG, uploadFile, wavFile } from './files-suite';
import type { TestApp } from './app';
import { userToken } from './tokens';
import { until } from './until';
import { Frame, TestClient } from './ws-client';

/** Files the fuzzing user really uploaded, so that valid file and voice frames reach the handlers. */
export interface FuzzFiles {
  image: string;
  audio: string;
}

/** Uploads one picture and one voice note for `userId`. */
export async function uploadFuzzFiles(t: TestApp, userId: string): Promise<FuzzFiles> {
  const image = await uploadFile(t, userToken(userId), { bytes: PNG, name: 'fuzz.png' });
  const audio = await uploadFile(t, userToken(userId), { bytes: wavFile(64), name: 'fuzz.wav' });
  expect([image.status, audio.status]).toEqual([200, 200]);
  return { image: image.body.file_id, audio: audio.body.file_id };
}

/** Frames a client may legitimately send, the starting points of the mutations. */
function validFrames(files: FuzzFiles): Record<string, unknown>[] {
  return [
    { type: 'user_message', content: 'hello there' },
    { type: 'user_message', content: 'with metadata', metadata: { source: 'web', count: 2 } },
    { type: 'ping' },
    { type: 'model_select', model_id: 'demo' },
    { type: 'help_request', content: 'a human please' },
    { type: 'typing_indicator', metadata: { typing: 'true' } },
    { type: 'stop_generation' },
    { type: 'end_session' },
    { type: 'stream_resume', metadata: { message_id: 'm-1', last_seq: '0' } },
    { type: 'file_upload', file_id: files.image, content: 'a file' },
    { type: 'voice_message', file_id: files.audio },
    { type: 'file_upload', file_id: 'f'.repeat(32) },
    { type: 'admin_leave' },
  ];
}

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
  '\ud800',
  'k'.repeat(70),
  'transcription',
  'admin_name',
  'status',
];

/**
 * One UTF-16 unit of any kind: a code point of any plane (what `unit: 'binary'` gives), a single
 * code unit (so unpaired surrogates too), or one of U+0000, a lone high or low surrogate, a C0/C1
 * control character, which random choice alone would rarely produce.
 */
const anyUnit: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
  fc.constantFrom('\u0000', '\ud800', '\udfff', '\u0007', '\u001b', '\u0085', '\u2028', '\ufeff'),
);
/** Text of full Unicode, control characters, U+0000 and unpaired surrogates included. */
const anyText = (maxLength: number) => fc.string({ unit: anyUnit, maxLength });

const isObject = (value: unknown): value is object =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Nested containers `depth` levels deep. */
const nested = (depth: number, leaf: unknown): unknown =>
  depth === 0 ? leaf : depth % 2 === 0 ? [nested(depth - 1, leaf)] : { n: nested(depth - 1, leaf) };

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  anyText(40),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(
    'x'.repeat(10_001),
    'é'.repeat(1_001),
    '\ud800',
    'a\u0000b',
    '2026-02-31T25:61:00Z',
    'demo',
    '',
    '   ',
    'a'.repeat(32),
  ),
  fc.constant([]),
  fc.constant({}),
  fc.array(anyText(8), { maxLength: 25 }),
  fc.dictionary(fc.constantFrom(...HOSTILE_KEYS), anyText(8), { maxKeys: 4 }),
  fc.integer({ min: 1, max: 40 }).map((depth) => nested(depth, 'deep')),
  fc.jsonValue({ maxDepth: 3, stringUnit: anyUnit }),
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
      // Only an object is extended: spreading a 10,001-character string would make 10,001 keys.
      metadata: { ...(isObject(frame.metadata) ? frame.metadata : {}), [key]: value },
    })),
  fc.integer({ min: 19, max: 30 }).map((count): Mutation => (frame) => ({
    ...frame,
    metadata: Object.fromEntries(Array.from({ length: count }, (_, index) => [`k${index}`, `${index}`])),
  })),
  fc
    .oneof(anyText(30), fc.integer(), fc.constantFrom('ai_response', 'error', 'pong'))
    .map((type): Mutation => (frame) => ({ ...frame, type })),
);

/** A valid frame with one to three mutations, serialised; sometimes the text itself is damaged. */
const mutatedFrame = (files: FuzzFiles): fc.Arbitrary<string> =>
  fc
    .tuple(
      fc.constantFrom(...validFrames(files)),
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
const randomFrame = (files: FuzzFiles): fc.Arbitrary<string> =>
  fc.oneof(
    anyText(200),
    fc.json({ stringUnit: anyUnit }),
    fc
      .record(
        {
          type: fc.oneof(
            fc.constantFrom(...validFrames(files).map((frame) => frame.type as string), 'bogus'),
            anyText(20),
            fc.integer(),
          ),
          session_id: fc.oneof(anyText(200), fc.integer(), fc.constant(null)),
          content: fc.oneof(anyText(200), fc.integer(), fc.array(anyText(20))),
          file_id: fc.oneof(fc.constantFrom(files.image, files.audio), anyText(40)),
          model_id: fc.oneof(anyText(40), fc.constant('demo')),
          metadata: fc.oneof(
            fc.dictionary(anyText(20), fc.oneof(anyText(20), fc.integer(), fc.boolean(), fc.object())),
            anyText(20),
            fc.constant(null),
          ),
          sender: fc.oneof(fc.constantFrom('user', 'admin', 'ai', 'system'), anyText(10)),
        },
        { requiredKeys: [] },
      )
      .map((value) => JSON.stringify(value)),
  );

/**
 * Frames of a valid shape with random text: most reach the session layer (stored, answered, relayed),
 * the rest are refused for a U+0000, an unpaired surrogate or a blank content.
 */
const plausibleFrame = (files: FuzzFiles): fc.Arbitrary<string> => {
  const text = (maxLength: number) =>
    fc.oneof({ weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength }) }, anyText(maxLength));
  const metadata = fc.dictionary(fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/), text(40), { maxKeys: 3 });
  const sessionId = fc.option(fc.stringMatching(/^[a-f0-9]{32}$/), { nil: undefined });
  return fc
    .oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          type: fc.constant('user_message'),
          content: text(300),
          metadata,
          session_id: sessionId,
        }),
      },
      fc.record({ type: fc.constant('help_request'), content: text(100) }),
      fc.record({
        type: fc.constant('file_upload'),
        file_id: fc.constantFrom(files.image),
        content: text(100),
      }),
      fc.record({
        type: fc.constant('typing_indicator'),
        metadata: fc.record({ typing: fc.constantFrom('true', 'false') }),
      }),
      fc.record({ type: fc.constant('model_select'), model_id: fc.oneof(fc.constant('demo'), text(10)) }),
      fc.record({ type: fc.constantFrom('stop_generation', 'ping', 'end_session') }),
    )
    .map((frame) => JSON.stringify(frame));
};

/**
 * MAX_MESSAGE_SIZE of the fuzzed apps. Larger frames close the socket with 1009 (tested on its own in
 * chat-hostile.test.ts), so the fuzz sends none: it would end the run, not test anything more.
 */
export const FUZZ_MAX_MESSAGE_SIZE = 65_536;

/**
 * `count` frames of at most FUZZ_MAX_MESSAGE_SIZE bytes, reproducible from `seed`: two fifths random,
 * two fifths mutated valid ones, one fifth of a valid shape with random text. Strings are of
 * full Unicode (U+0000, control characters and unpaired surrogates included); file ids are partly
 * the user's real uploads (`files`).
 */
export function fuzzFrames(count: number, seed: number, files: FuzzFiles): string[] {
  return fc.sample(
    fc
      .oneof(
        { weight: 2, arbitrary: randomFrame(files) },
        { weight: 2, arbitrary: mutatedFrame(files) },
        { weight: 1, arbitrary: plausibleFrame(files) },
      )
      .filter((raw) => Buffer.byteLength(raw) <= FUZZ_MAX_MESSAGE_SIZE),
    { numRuns: count, seed },
  );
}

/** Frames the server sends as the direct answer to a client frame. */
const ANSWER_TYPES = ['error', 'pong', 'connection_status', 'notification'];
/**
 * Valid frames that may have no direct answer (SPEC 4.5–4.7): an accepted `user_message` is answered
 * by its streamed reply (checked per session below); a `stop_generation` during a reply by that
 * reply's done frame; a `stream_resume` by the replayed frames (none when nothing is missing); a
 * `file_upload` is never echoed to its sender; a `typing_indicator` is only relayed.
 */
const NO_DIRECT_ANSWER = [
  'user_message',
  'stop_generation',
  'stream_resume',
  'file_upload',
  'typing_indicator',
];

interface SentFrame {
  raw: string;
  type: unknown;
  /** The parser's refusal (code), or undefined when the gateway accepts the frame. */
  refusal?: string;
  /** Everything that arrived between this frame's marker and the previous one. */
  answers: Frame[];
}

export interface FuzzReport {
  userId: string;
  sent: SentFrame[];
  /** Every frame received during the run, in order. */
  received: Frame[];
}

function typeOf(raw: string): unknown {
  try {
    const parsed = JSON.parse(raw) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as { type?: unknown }).type : undefined;
  } catch {
    return undefined;
  }
}

/** The parser's verdict on a frame: its error code, or undefined when accepted. */
function refusalOf(raw: string): string | undefined {
  try {
    parseFrame(raw);
    return undefined;
  } catch (error) {
    if (error instanceof DomainError) return error.code;
    throw error;
  }
}

/**
 * Sends every frame followed by a marker frame (a ping with an unknown field `fuzz_marker_<i>`,
 * answered by an INVALID_FORMAT error naming that field). Frames of one socket are handled in order,
 * so whatever the server sent because of a frame arrives before that frame's marker error; reply
 * frames stream on their own time and may land anywhere later.
 */
export async function fuzzSocket(
  client: TestClient,
  userId: string,
  frames: string[],
  batch = 250,
): Promise<FuzzReport> {
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
  let cursor = 0;
  const sent = frames.map((raw, index): SentFrame => {
    const end = received.findIndex((frame, position) => position >= cursor && isMarker(frame, index));
    const answers = received.slice(cursor, end);
    cursor = end + 1;
    // What the server parses: the text after its UTF-8 round trip (a raw unpaired surrogate arrives
    // as U+FFFD; JSON-escaped ones arrive intact).
    const delivered = Buffer.from(raw, 'utf8').toString('utf8');
    return { raw, type: typeOf(delivered), refusal: refusalOf(delivered), answers };
  });
  return { userId, sent, received };
}

/** Message ids of the replies this socket saw start (`loading`) and end (done frame), by session. */
function repliesBySession(
  client: TestClient,
  from: number,
): Map<string, { started: Set<string>; done: Set<string> }> {
  const bySession = new Map<string, { started: Set<string>; done: Set<string> }>();
  for (const frame of client.frames.slice(from)) {
    const isStart = frame.type === 'loading';
    const isDone =
      frame.type === 'ai_response' && frame.metadata?.streaming === 'true' && frame.metadata?.done === 'true';
    if (!isStart && !isDone) continue;
    const replies = bySession.get(frame.session_id!) ?? {
      started: new Set<string>(),
      done: new Set<string>(),
    };
    (isStart ? replies.started : replies.done).add(frame.metadata!.message_id);
    bySession.set(frame.session_id!, replies);
  }
  return bySession;
}

/**
 * The fuzz verdict, exactly:
 * 1. No frame received is an INTERNAL_ERROR, and the socket stays open and answers a ping.
 * 2. Every frame the parser refuses (typing_indicator included) is answered, before the next frame's
 *    marker, with an `error` of the parser's code (INVALID_FORMAT or MISSING_FIELD).
 * 3. Every frame the parser accepts is answered directly (error, pong, connection_status or
 *    notification), except the NO_DIRECT_ANSWER types.
 * 4. The user messages stored for the user are exactly the accepted `user_message` frames that got no
 *    direct error (TOO_MANY_REQUESTS, SERVICE_BUSY, ... refuse a message without storing it).
 * 5. Every stored user message gets its reply, per session (from the database) against the replies
 *    the socket saw start (`loading`) and end (the done frame every reply ends with, also a stopped
 *    or failed one, whose error frame comes first); no done frame without its start. In the session
 *    the socket ends bound to: every message's reply started and ended (waited for). In a session
 *    that ended meanwhile (end_session, a new session, the message limit), exactly the documented
 *    losses (docs/reference.md): the replies still waiting when it ended are not started (at most
 *    `queuedRepliesPerSession`), and of the started ones only the one streaming when the socket moved
 *    on to a new session may end unseen.
 */
export async function expectFuzzSurvived(
  t: TestApp,
  client: TestClient,
  report: FuzzReport,
  runStart: number,
): Promise<void> {
  expect(report.received.filter((frame) => frame.error?.code === 'INTERNAL_ERROR')).toEqual([]);

  const unanswered = report.sent.filter(({ type, refusal, answers }) =>
    refusal
      ? !answers.some((frame) => frame.type === 'error' && frame.error?.code === refusal)
      : !NO_DIRECT_ANSWER.includes(type as string) &&
        !answers.some((frame) => ANSWER_TYPES.includes(frame.type)),
  );
  expect(unanswered.map(({ raw, refusal, answers }) => ({ raw, refusal, answers }))).toEqual([]);

  const accepted = report.sent.filter(
    ({ type, refusal, answers }) =>
      type === 'user_message' && !refusal && !answers.some((frame) => frame.type === 'error'),
  );
  expect(accepted.length).toBeGreaterThan(0);
  const { sessionMessages, activeSession } = await storedUserMessages(t, report.userId);
  expect([...sessionMessages.values()].reduce((sum, count) => sum + count, 0)).toBe(accepted.length);

  const none = { started: new Set<string>(), done: new Set<string>() };
  if (activeSession)
    await until(() => {
      const { started, done } = repliesBySession(client, runStart).get(activeSession) ?? none;
      return started.size === sessionMessages.get(activeSession) && done.size === started.size;
    }, 30_000);
  const replies = repliesBySession(client, runStart);
  const waiting = t.config.protocol.queuedRepliesPerSession;
  const wrong = [...sessionMessages]
    .map(([sessionId, messages]) => {
      const { started, done } = replies.get(sessionId) ?? none;
      const unseenEnds = [...started].filter((id) => !done.has(id)).length;
      const endsWithoutStart = [...done].filter((id) => !started.has(id)).length;
      return { sessionId, messages, started: started.size, unseenEnds, endsWithoutStart };
    })
    .filter(({ sessionId, messages, started, unseenEnds, endsWithoutStart }) =>
      sessionId === activeSession
        ? started !== messages || unseenEnds > 0 || endsWithoutStart > 0
        : started > messages || messages - started > waiting || unseenEnds > 1 || endsWithoutStart > 0,
    );
  expect(wrong).toEqual([]);

  const from = client.frames.length;
  client.send({ type: 'ping' });
  await client.waitFor((frame) => frame.type === 'pong', 10_000, from);
  expect(client.socket.readyState).toBe(client.socket.OPEN);
}

/** The user's stored `user_message`s per session, and the session still active (if any). */
async function storedUserMessages(
  t: TestApp,
  userId: string,
): Promise<{ sessionMessages: Map<string, number>; activeSession?: string }> {
  const sessions = await t.db.collection('sessions').find({ uid: userId }).toArray();
  const sessionMessages = new Map<string, number>();
  let activeSession: string | undefined;
  for (const session of sessions) {
    const stored = await t.stored(session._id as unknown as string);
    const count = stored!.msgs.filter(
      (message) => message.type === 'user_message' && message.sender === 'user',
    ).length;
    sessionMessages.set(stored!._id, count);
    if (!stored!.endTs) activeSession = stored!._id;
  }
  return { sessionMessages, activeSession };
}
