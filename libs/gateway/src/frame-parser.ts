import { ValidationError, validateSync } from 'class-validator';
import {
  DEFAULT_PROTOCOL_LIMITS as LIMITS,
  CLIENT_ID_PATTERN,
  DomainError,
  ErrorCode,
  isStorableText,
  UNSTORABLE_TEXT_RULE,
} from '@chatbox/common';
import {
  INBOUND_TYPES,
  InboundFrame,
  InboundType,
  REGENERATE_OF_KEY,
  isServerMetadataKey,
} from '@chatbox/session';
import {
  DTO_BY_TYPE,
  EnvelopeDto,
  METADATA_DTO_BY_TYPE,
  ResumeMetadataDto,
  RuleContext,
} from './dto/inbound-frame.dto';

type JsonKind = 'string' | 'object' | 'array';

/**
 * Every key of the SPEC 4.2 envelope a client may send, with its JSON type. Keys the server only
 * sends (`id`, `user_id`, `models`, `error`) are accepted because old clients echo frames back, and
 * never used. Any other top-level key is refused.
 */
const ENVELOPE_KINDS: Readonly<Record<keyof EnvelopeDto, JsonKind>> = {
  type: 'string',
  session_id: 'string',
  content: 'string',
  file_id: 'string',
  file_url: 'string',
  model_id: 'string',
  metadata: 'object',
  sender: 'string',
  timestamp: 'string',
  id: 'string',
  user_id: 'string',
  models: 'array',
  error: 'object',
};
const ENVELOPE_KEYS = Object.keys(ENVELOPE_KINDS) as (keyof EnvelopeDto)[];
const KNOWN_TYPES: readonly string[] = INBOUND_TYPES;
/** Unknown keys named in the refusal; the rest are counted. */
const NAMED_UNKNOWN_KEYS = 5;

/**
 * Keys that could reach an object's prototype when a parsed value is merged or transformed later.
 * The JSON reviver drops them at every depth, so no later step ever sees them.
 */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const METADATA_KEY = new RegExp(`^[A-Za-z0-9_-]{1,${LIMITS.metadataKeyChars}}$`);
/** Server-owned metadata keys some client types carry as their input. */
const METADATA_INPUTS: Partial<Record<InboundType, readonly string[]>> = {
  stream_resume: ['message_id', 'last_seq'],
  typing_indicator: ['typing'],
};
/**
 * A message id as the server hands them out (UUIDs; `<session id>-<n>` for migrated messages; the
 * earlier service's ids): what `metadata.regenerate_of` of a `user_message` must look like.
 */
const MESSAGE_ID = new RegExp(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,${LIMITS.echoedIdChars - 1}}$`);

function invalid(message: string): DomainError {
  return new DomainError(ErrorCode.INVALID_FORMAT, message);
}

function missing(message: string): DomainError {
  return new DomainError(ErrorCode.MISSING_FIELD, message);
}

/** A client-chosen name, shortened and quoted for an error message. */
function shown(name: string): string {
  return JSON.stringify([...name].slice(0, LIMITS.metadataKeyChars).join(''));
}

function withoutPrototypeKeys(key: string, value: unknown): unknown {
  return PROTOTYPE_KEYS.has(key) ? undefined : value;
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function kindOf(value: unknown): JsonKind | 'other' {
  if (typeof value === 'string') return 'string';
  if (Array.isArray(value)) return 'array';
  return isJsonObject(value) ? 'object' : 'other';
}

/**
 * The first failed rule (inside nested metadata too), as its message, which names the field:
 * "required" failures and rules whose context says so are MISSING_FIELD, the rest INVALID_FORMAT.
 */
function toDomainError(errors: ValidationError[]): DomainError {
  let failure = errors[0];
  while (!failure.constraints && failure.children?.length) failure = failure.children[0];
  const [rule, message] = Object.entries(failure.constraints ?? {})[0] ?? [
    '',
    `${failure.property} is invalid`,
  ];
  const context = failure.contexts?.[rule] as RuleContext | undefined;
  if (rule === 'isDefined' || context?.code === ErrorCode.MISSING_FIELD) return missing(message);
  return invalid(message);
}

/** Only the envelope's keys, each of its JSON type; unknown keys are refused by name. */
function checkEnvelope(body: Record<string, unknown>): void {
  const unknown = Object.keys(body).filter((key) => !Object.hasOwn(ENVELOPE_KINDS, key));
  if (unknown.length > 0) {
    const named = unknown.slice(0, NAMED_UNKNOWN_KEYS).map(shown).join(', ');
    const more =
      unknown.length > NAMED_UNKNOWN_KEYS ? ` and ${unknown.length - NAMED_UNKNOWN_KEYS} more` : '';
    throw invalid(`unknown field${unknown.length > 1 ? 's' : ''} ${named}${more}`);
  }
  for (const key of ENVELOPE_KEYS) {
    const value = body[key];
    // A null optional key is an absent one (as old clients send them); metadata must be an object.
    if (value === undefined || (value === null && key !== 'metadata')) continue;
    const kind = ENVELOPE_KINDS[key];
    if (kindOf(value) !== kind)
      throw invalid(`${key} must be ${kind === 'object' ? 'a JSON object' : `a JSON ${kind}`}`);
  }
}

/**
 * Metadata values are strings; numbers and booleans from older clients are converted (SPEC 4.2).
 * Bounded key count, key pattern (no `$` or `.`: keys reach stored documents), value length.
 * Server-owned keys are dropped, except the ones this frame type takes as input.
 */
function normaliseMetadata(metadata: Record<string, unknown>, type: InboundType): Record<string, string> {
  const keys = Object.keys(metadata);
  if (keys.length > LIMITS.metadataKeys)
    throw invalid(`metadata must have at most ${LIMITS.metadataKeys} keys`);
  const inputs = METADATA_INPUTS[type] ?? [];
  const result: Record<string, string> = {};
  for (const key of keys) {
    if (!METADATA_KEY.test(key))
      throw invalid(
        `metadata key ${shown(key)} must be 1-${LIMITS.metadataKeyChars} letters, digits, _ or -`,
      );
    const value = metadata[key];
    let text: string;
    if (typeof value === 'string') text = value;
    else if (typeof value === 'number' && Number.isFinite(value)) text = String(value);
    else if (typeof value === 'boolean') text = String(value);
    else throw invalid(`metadata.${key} must be a string, number or boolean`);
    if ([...text].length > LIMITS.metadataValueChars)
      throw invalid(`metadata.${key} must be at most ${LIMITS.metadataValueChars} characters`);
    if (!isStorableText(text)) throw invalid(`metadata.${key} ${UNSTORABLE_TEXT_RULE}`);
    if (isServerMetadataKey(key) && !inputs.includes(key)) continue;
    result[key] = text;
  }
  return result;
}

/** `regenerate_of` names the AI reply a re-sent question replaces; the reply service reads it. */
function checkRegenerateOf(metadata: Record<string, string> | undefined): void {
  const replaced = metadata?.[REGENERATE_OF_KEY];
  if (replaced !== undefined && !MESSAGE_ID.test(replaced))
    throw invalid(`metadata.${REGENERATE_OF_KEY} must be a message id`);
}

/** The keys of the common `user_message` whose rules `passesUserMessageRules` checks itself. */
const USER_MESSAGE_KEYS = new Set(['type', 'content', 'session_id', 'metadata']);

/**
 * True when a `user_message` of the usual shape (`content`, maybe `session_id` and metadata) meets
 * every rule `UserMessageDto` has for it, checked directly: `validateSync` cost about 0.2 ms per
 * frame in a burst of 200 first messages (issue 12), a tenth of the time before the provider call.
 * Only a sufficient condition: the length is counted in UTF-16 units, never fewer than the
 * characters `@MaxLength` counts. Anything it does not prove goes through class-validator, so every
 * refusal and its message stay class-validator's (a property test holds the two to the same result).
 */
function passesUserMessageRules(body: Record<string, unknown>): boolean {
  for (const key of Object.keys(body)) if (!USER_MESSAGE_KEYS.has(key)) return false;
  const { content, session_id: sessionId } = body;
  if (typeof content !== 'string' || content.length > LIMITS.contentChars) return false;
  if (content.trim() === '' || !isStorableText(content)) return false;
  if (sessionId === undefined || sessionId === null) return true;
  return (
    typeof sessionId === 'string' &&
    sessionId.length <= LIMITS.sessionIdChars &&
    CLIENT_ID_PATTERN.test(sessionId)
  );
}

/**
 * The one validation of client frames, at the edge (the platform adapter drops bad frames silently):
 * JSON without prototype keys, then the envelope's keys and types, then a DTO of the frame's type
 * built from the known keys only. Every bad frame becomes a DomainError naming the field; the cost
 * is linear in the frame's size whatever its shape. `viaValidatorOnly` skips the direct check of the
 * common `user_message` (`passesUserMessageRules`): the tests compare both ways.
 */
export function parseFrame(raw: string, { viaValidatorOnly = false } = {}): InboundFrame {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw, withoutPrototypeKeys);
  } catch {
    throw invalid('invalid JSON');
  }
  if (!isJsonObject(parsed)) throw invalid('frame must be a JSON object');
  if (parsed.type === undefined) throw missing('type is required');
  if (typeof parsed.type !== 'string') throw invalid('type must be a string');
  if (!KNOWN_TYPES.includes(parsed.type))
    throw invalid(`unknown message type ${parsed.type.slice(0, LIMITS.modelIdChars)}`);
  const type = parsed.type as InboundType;
  checkEnvelope(parsed);
  const metadata = isJsonObject(parsed.metadata) ? normaliseMetadata(parsed.metadata, type) : undefined;
  if (type === 'user_message') checkRegenerateOf(metadata);

  const dto = new DTO_BY_TYPE[type]();
  const fields = dto as unknown as Record<string, unknown>;
  const MetadataDto = METADATA_DTO_BY_TYPE[type];
  const metadataField = metadata && MetadataDto ? Object.assign(new MetadataDto(), metadata) : metadata;
  for (const key of ENVELOPE_KEYS) {
    const value = key === 'metadata' ? metadataField : parsed[key];
    if (value !== undefined && value !== null) fields[key] = value;
  }
  const provenValid = !viaValidatorOnly && type === 'user_message' && passesUserMessageRules(parsed);
  const errors = provenValid ? [] : validateSync(dto, { forbidUnknownValues: false });
  if (errors.length > 0) throw toDomainError(errors);

  const frame: Omit<InboundFrame, 'type'> = {};
  if (dto.session_id) frame.session_id = dto.session_id;
  if (dto.content !== undefined) frame.content = dto.content;
  if (dto.file_id !== undefined) frame.file_id = dto.file_id;
  if (dto.file_url !== undefined) frame.file_url = dto.file_url;
  if (dto.model_id !== undefined) frame.model_id = dto.model_id;
  if (dto.timestamp !== undefined) frame.timestamp = dto.timestamp;
  if (metadata && Object.keys(metadata).length > 0) frame.metadata = metadata;
  // The DTO of the type has just proved what its frame type requires (content, model_id, file_id).
  if (type !== 'stream_resume') return { ...frame, type } as InboundFrame;
  const { message_id, last_seq } = dto.metadata as unknown as ResumeMetadataDto;
  return { ...frame, type, resume: { messageId: message_id, lastSeq: Number(last_seq) } };
}
