import { plainToInstance } from 'class-transformer';
import { ValidationError, validateSync } from 'class-validator';
import { DEFAULT_PROTOCOL_LIMITS as LIMITS, DomainError, ErrorCode } from '@chatbox/common';
import { INBOUND_TYPES, InboundFrame, InboundType } from '@chatbox/session';
import { DTO_BY_TYPE } from './dto/inbound-frame.dto';

const KNOWN_TYPES: readonly string[] = INBOUND_TYPES;

function invalid(message: string): DomainError {
  return new DomainError(ErrorCode.INVALID_FORMAT, message);
}

/** First constraint message, naming the field; "required" failures become MISSING_FIELD. */
function toDomainError(errors: ValidationError[]): DomainError {
  const first = errors[0];
  const constraints = first.constraints ?? {};
  const message = Object.values(constraints)[0] ?? `${first.property} is invalid`;
  if (constraints.isDefined) return new DomainError(ErrorCode.MISSING_FIELD, message);
  return invalid(message);
}

/**
 * Metadata values must be strings; numbers and booleans from older clients are accepted and
 * converted (SPEC 4.2). Bounds: key count, key length, value length.
 */
function normaliseMetadata(metadata: Record<string, unknown>): Record<string, string> {
  const entries = Object.entries(metadata);
  if (entries.length > LIMITS.metadataKeys)
    throw invalid(`metadata must have at most ${LIMITS.metadataKeys} keys`);
  const result: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (key.length === 0 || [...key].length > LIMITS.metadataKeyChars)
      throw invalid(
        `metadata key "${[...key].slice(0, LIMITS.metadataKeyChars).join('')}" must be 1-${LIMITS.metadataKeyChars} characters`,
      );
    let text: string;
    if (typeof value === 'string') text = value;
    else if (typeof value === 'number' && Number.isFinite(value)) text = String(value);
    else if (typeof value === 'boolean') text = String(value);
    else throw invalid(`metadata.${key} must be a string, number or boolean`);
    if ([...text].length > LIMITS.metadataValueChars)
      throw invalid(`metadata.${key} must be at most ${LIMITS.metadataValueChars} characters`);
    result[key] = text;
  }
  return result;
}

/**
 * Our own frame parsing (the platform adapter drops bad frames silently): every bad frame becomes
 * a precise DomainError naming the field.
 */
export function parseFrame(raw: string): InboundFrame {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalid('invalid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw invalid('frame must be a JSON object');
  const body = parsed as Record<string, unknown>;
  if (body.type === undefined) throw new DomainError(ErrorCode.MISSING_FIELD, 'type is required');
  if (typeof body.type !== 'string') throw invalid('type must be a string');
  if (!KNOWN_TYPES.includes(body.type))
    throw invalid(`unknown message type ${body.type.slice(0, LIMITS.modelIdChars)}`);
  const type = body.type as InboundType;
  const dto = plainToInstance(DTO_BY_TYPE[type], body, { enableImplicitConversion: false });
  const errors = validateSync(dto, { forbidUnknownValues: false, whitelist: false });
  if (errors.length > 0) throw toDomainError(errors);
  const content = typeof body.content === 'string' ? body.content : undefined;
  const frame: InboundFrame = { type };
  if (typeof body.session_id === 'string' && body.session_id !== '') frame.session_id = body.session_id;
  if (content !== undefined) frame.content = content;
  if (typeof body.file_id === 'string') frame.file_id = body.file_id;
  if (typeof body.file_url === 'string') frame.file_url = body.file_url;
  if (typeof body.model_id === 'string') frame.model_id = body.model_id;
  if (typeof body.timestamp === 'string') frame.timestamp = body.timestamp;
  if (body.metadata !== undefined)
    frame.metadata = normaliseMetadata(body.metadata as Record<string, unknown>);
  if (
    type === 'stream_resume' &&
    (frame.metadata?.message_id === undefined || frame.metadata.last_seq === undefined)
  )
    throw new DomainError(
      ErrorCode.MISSING_FIELD,
      'metadata.message_id and metadata.last_seq are required for stream_resume',
    );
  return frame;
}
