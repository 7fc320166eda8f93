import {
  ArrayMaxSize,
  IsArray,
  IsDefined,
  IsIn,
  IsISO8601,
  IsNotEmpty,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  ValidateBy,
  ValidateIf,
  ValidateNested,
  ValidationOptions,
} from 'class-validator';
import {
  CLIENT_ID_CHARACTERS,
  CLIENT_ID_PATTERN,
  DEFAULT_PROTOCOL_LIMITS as LIMITS,
  ErrorCode,
  STORABLE_TEXT_PATTERN,
  UNSTORABLE_TEXT_RULE,
} from '@chatbox/common';
import { INBOUND_TYPES, InboundType } from '@chatbox/session';

const SENDERS = ['user', 'ai', 'admin', 'system'];

/** An id the server issued and the client sends back (SPEC 4.2): refused outside its alphabet. */
const clientId = (name: string) =>
  Matches(CLIENT_ID_PATTERN, { message: `${name} must be ${CLIENT_ID_CHARACTERS}` });
/** Free text: refused when the database could not store it as sent (U+0000, unpaired surrogates). */
const storableText = () => Matches(STORABLE_TEXT_PATTERN, { message: `$property ${UNSTORABLE_TEXT_RULE}` });

/**
 * The error code of a failed rule, when it is not INVALID_FORMAT (`@IsDefined` failures are
 * MISSING_FIELD without saying so): read by the parser (frame-parser.ts).
 */
export interface RuleContext {
  code: ErrorCode;
}
const missing = (message: string): ValidationOptions => ({
  message,
  context: { code: ErrorCode.MISSING_FIELD } satisfies RuleContext,
});

/**
 * A field its frame type requires: MISSING_FIELD with `message` when absent. The `ValidateIf`
 * replaces the `@IsOptional()` inherited from the envelope: class-validator evaluates conditions
 * before `@IsDefined`, so under the inherited one an absent field would pass without a word.
 */
function Required(message: ValidationOptions['message']): PropertyDecorator {
  return (target, property) => {
    ValidateIf(() => true)(target, property);
    IsDefined({ message })(target, property);
  };
}

/** Text with something other than whitespace in it. */
function IsNotBlank(options: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isNotBlank',
      validator: { validate: (value: unknown) => typeof value === 'string' && value.trim() !== '' },
    },
    options,
  );
}

/**
 * The envelope every client frame shares (SPEC 4.2). Lengths are characters, not bytes. The parser
 * (frame-parser.ts) builds these objects from the known keys only, after checking the keys, their
 * JSON types and the metadata; class-validator then checks what is left (lengths, enums, dates).
 */
export class EnvelopeDto {
  @IsString() @IsNotEmpty() type!: string;
  @IsOptional() @IsString() @MaxLength(LIMITS.sessionIdChars) @clientId('session_id') session_id?: string;
  @IsOptional() @IsString() @MaxLength(LIMITS.contentChars) @storableText() content?: string;
  @IsOptional() @IsString() @MaxLength(LIMITS.fileIdChars) @clientId('file_id') file_id?: string;
  @IsOptional() @IsString() @MaxLength(LIMITS.fileUrlChars) @storableText() file_url?: string;
  @IsOptional() @IsString() @MaxLength(LIMITS.modelIdChars) @storableText() model_id?: string;
  @IsOptional() @IsObject() metadata?: Record<string, string>;
  // Accepted for old clients but never trusted: the server decides the stored sender.
  @IsOptional() @IsIn(SENDERS) sender?: string;
  @IsOptional() @IsISO8601({ strict: false }) timestamp?: string;
  // Server fields that old clients echo back: accepted, never used.
  @IsOptional() @IsString() @MaxLength(LIMITS.echoedIdChars) @storableText() id?: string;
  @IsOptional() @IsString() @MaxLength(LIMITS.echoedIdChars) @storableText() user_id?: string;
  @IsOptional() @IsArray() @ArrayMaxSize(LIMITS.echoedModels) models?: unknown[];
  @IsOptional() @IsObject() error?: Record<string, unknown>;
}

/*
 * A subclass that re-decorates a property must repeat the base rules of that property: class-validator
 * drops the inherited rules of the same kind (IsString, MaxLength, IsNotEmpty are all custom
 * validations), so `@IsNotEmpty()` alone would silently lose the type and length checks.
 * test/integration/asyncapi.test.ts compares these rules with docs/asyncapi.yaml.
 */
/** A message needs text: absent, empty or blank content is MISSING_FIELD, as it always was. */
export class UserMessageDto extends EnvelopeDto {
  @Required('content is required for user_message')
  @IsNotBlank(missing('content is required for user_message'))
  @IsString()
  @MaxLength(LIMITS.contentChars)
  @storableText()
  declare content: string;
}

export class ModelSelectDto extends EnvelopeDto {
  @Required('model_id is required for model_select')
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.modelIdChars)
  @storableText()
  declare model_id: string;
}

export class FileMessageDto extends EnvelopeDto {
  @Required(({ object }) => `file_id is required for ${(object as EnvelopeDto).type}`)
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.fileIdChars)
  @clientId('file_id')
  declare file_id: string;
}

const RESUME_REQUIRED = 'metadata.message_id and metadata.last_seq are required for stream_resume';
/** A whole number from -1 up, as text (-1: replay everything); leading zeros are tolerated. */
const LAST_SEQ = /^(?:\d{1,15}|-0{0,14}[01])$/;

/**
 * What a `stream_resume` asks for, inside its (already normalised, string-valued) metadata: the
 * parser builds this object from the metadata so the two keys are validated here like any field.
 */
export class ResumeMetadataDto {
  /** The frame's other metadata keys ride along, unvalidated here (the parser checked them). */
  [key: string]: string;

  @IsDefined({ message: RESUME_REQUIRED })
  @IsNotEmpty(missing(RESUME_REQUIRED))
  @clientId('metadata.message_id')
  message_id!: string;

  @IsDefined({ message: RESUME_REQUIRED })
  @Matches(LAST_SEQ, { message: 'metadata.last_seq must be a whole number from -1 up' })
  last_seq!: string;
}

export class StreamResumeDto extends EnvelopeDto {
  @Required(RESUME_REQUIRED)
  @ValidateNested()
  declare metadata: ResumeMetadataDto;
}

export class TypingDto extends EnvelopeDto {
  @ValidateIf((frame: TypingDto) => frame.metadata !== undefined)
  @IsObject()
  declare metadata?: Record<string, string>;
}

/** The class of a frame type's metadata when its keys are rules of that type (not free-form). */
export const METADATA_DTO_BY_TYPE: Partial<Record<InboundType, new () => object>> = {
  stream_resume: ResumeMetadataDto,
};

/** The DTO that validates each client message type. */
export const DTO_BY_TYPE: Record<(typeof INBOUND_TYPES)[number], typeof EnvelopeDto> = {
  user_message: UserMessageDto,
  model_select: ModelSelectDto,
  help_request: EnvelopeDto,
  file_upload: FileMessageDto,
  voice_message: FileMessageDto,
  typing_indicator: TypingDto,
  ping: EnvelopeDto,
  stop_generation: EnvelopeDto,
  stream_resume: StreamResumeDto,
  end_session: EnvelopeDto,
  admin_leave: EnvelopeDto,
};
