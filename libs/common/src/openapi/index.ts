import { applyDecorators, HttpStatus } from '@nestjs/common';
import { ApiBearerAuth, ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';
import { ErrorCode } from '../errors/error-codes';

/** Name of the Bearer JWT security scheme in the OpenAPI document. */
export const BEARER_AUTH = 'bearer';

/** The REST error body of SPEC 5, produced only by HttpExceptionFilter. */
export class ErrorBodyDto {
  @ApiProperty({
    description: 'Human-readable message (same text as `message`)',
    example: 'Session not found',
  })
  error!: string;

  @ApiProperty({ enum: Object.values(ErrorCode), example: ErrorCode.NOT_FOUND })
  code!: string;

  @ApiProperty({ example: 'Session not found' })
  message!: string;

  @ApiPropertyOptional({ type: 'integer', description: 'On 429 only: milliseconds until allowed' })
  retry_after_ms?: number;
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  [HttpStatus.BAD_REQUEST]: '`BAD_REQUEST` (or a WebSocket validation code): the message names the parameter',
  [HttpStatus.UNAUTHORIZED]: '`UNAUTHORIZED` (no Bearer token) or `INVALID_TOKEN`',
  [HttpStatus.FORBIDDEN]: '`FORBIDDEN`',
  [HttpStatus.NOT_FOUND]: '`NOT_FOUND` (unknown, or not yours: both answer the same)',
  [HttpStatus.CONFLICT]: '`CONFLICT` or `SESSION_ENDED`',
  [HttpStatus.PAYLOAD_TOO_LARGE]: '`PAYLOAD_TOO_LARGE`',
  [HttpStatus.TOO_MANY_REQUESTS]:
    '`TOO_MANY_REQUESTS`; header `Retry-After` (seconds), body adds `retry_after_ms`',
  [HttpStatus.INTERNAL_SERVER_ERROR]: '`INTERNAL_ERROR` (details go to the log only)',
  [HttpStatus.SERVICE_UNAVAILABLE]: '`UNAVAILABLE`, `SERVICE_BUSY`, `DATABASE_ERROR` or `LLM_UNAVAILABLE`',
};

/** Documents the error answers of a route, all with the `{error, code, message}` body. */
export function ApiErrors(...statuses: HttpStatus[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: ERROR_DESCRIPTIONS[status] ?? 'Error',
        type: ErrorBodyDto,
        ...(status === HttpStatus.TOO_MANY_REQUESTS
          ? {
              headers: {
                'Retry-After': { description: 'Seconds until allowed', schema: { type: 'integer' } },
              },
            }
          : {}),
      }),
    ),
  );
}

/** A route for any authenticated user: Bearer JWT, 401 without one. */
export function ApiUser(): MethodDecorator & ClassDecorator {
  return applyDecorators(ApiBearerAuth(BEARER_AUTH), ApiErrors(HttpStatus.UNAUTHORIZED));
}

/** A string-valued map (message metadata, SPEC 4.2). */
export const STRING_MAP_SCHEMA = { type: 'object', additionalProperties: { type: 'string' } } as const;
