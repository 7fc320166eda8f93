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
  MaxLength,
  ValidateIf,
} from 'class-validator';
import { DEFAULT_PROTOCOL_LIMITS as LIMITS } from '@chatbox/common';
import { INBOUND_TYPES } from '@chatbox/session';

const SENDERS = ['user', 'ai', 'admin', 'system'];

/**
 * The envelope every client frame shares (SPEC 4.2). Lengths are characters, not bytes. The parser
 * (frame-parser.ts) builds these objects from the known keys only, after checking the keys, their
 * JSON types and the metadata; class-validator then checks what is left (lengths, enums, dates).
 */
export class EnvelopeDto {
  @IsString() @IsNotEmpty() type!: string;
  @IsOptional() @IsString() @MaxLength(LIMITS.sessionIdChars) session_id?: string;
  @IsOptional() @IsString() @MaxLength(LIMITS.contentChars) content?: string;
  @IsOptional() @IsString() @MaxLength(LIMITS.fileIdChars) file_id?: string;
  @IsOptional() @IsString() @MaxLength(LIMITS.fileUrlChars) file_url?: string;
  @IsOptional() @IsString() @MaxLength(LIMITS.modelIdChars) model_id?: string;
  @IsOptional() @IsObject() metadata?: Record<string, string>;
  // Accepted for old clients but never trusted: the server decides the stored sender.
  @IsOptional() @IsIn(SENDERS) sender?: string;
  @IsOptional() @IsISO8601({ strict: false }) timestamp?: string;
  // Server fields that old clients echo back: accepted, never used.
  @IsOptional() @IsString() @MaxLength(LIMITS.echoedIdChars) id?: string;
  @IsOptional() @IsString() @MaxLength(LIMITS.echoedIdChars) user_id?: string;
  @IsOptional() @IsArray() @ArrayMaxSize(LIMITS.echoedModels) models?: unknown[];
  @IsOptional() @IsObject() error?: Record<string, unknown>;
}

export class UserMessageDto extends EnvelopeDto {
  @IsDefined({ message: 'content is required for user_message' }) declare content: string;
}

/*
 * A subclass that re-decorates a property must repeat the base rules of that property: class-validator
 * drops the inherited rules of the same kind (IsString, MaxLength, IsNotEmpty are all custom
 * validations), so `@IsNotEmpty()` alone would silently lose the type and length checks.
 * test/integration/asyncapi.test.ts compares these rules with docs/asyncapi.yaml.
 */
export class ModelSelectDto extends EnvelopeDto {
  @IsDefined({ message: 'model_id is required for model_select' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.modelIdChars)
  declare model_id: string;
}

export class FileMessageDto extends EnvelopeDto {
  @IsDefined({ message: 'file_id is required' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.fileIdChars)
  declare file_id: string;
}

/** `metadata.message_id` and `metadata.last_seq` are checked by the parser (frame-parser.ts). */
export class StreamResumeDto extends EnvelopeDto {
  @IsDefined({ message: 'metadata.message_id and metadata.last_seq are required for stream_resume' })
  declare metadata: Record<string, string>;
}

export class TypingDto extends EnvelopeDto {
  @ValidateIf((frame: TypingDto) => frame.metadata !== undefined)
  @IsObject()
  declare metadata?: Record<string, string>;
}

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
