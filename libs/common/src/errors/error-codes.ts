/** Domain error codes of SPEC 4.9 (WebSocket) and 5 (REST), in one place. */
export enum ErrorCode {
  INVALID_FORMAT = 'INVALID_FORMAT',
  MISSING_FIELD = 'MISSING_FIELD',
  NOT_FOUND = 'NOT_FOUND',
  SESSION_ENDED = 'SESSION_ENDED',
  INVALID_MODEL = 'INVALID_MODEL',
  INVALID_FILE = 'INVALID_FILE',
  TOO_MANY_REQUESTS = 'TOO_MANY_REQUESTS',
  SERVICE_BUSY = 'SERVICE_BUSY',
  LLM_UNAVAILABLE = 'LLM_UNAVAILABLE',
  LLM_TIMEOUT = 'LLM_TIMEOUT',
  LLM_ERROR = 'LLM_ERROR',
  DATABASE_ERROR = 'DATABASE_ERROR',
  TRANSCRIPTION_UNAVAILABLE = 'TRANSCRIPTION_UNAVAILABLE',
  UNAUTHORIZED = 'UNAUTHORIZED',
  TOKEN_EXPIRED = 'TOKEN_EXPIRED',
  INTERNAL_ERROR = 'INTERNAL_ERROR',
  // REST-only codes (SPEC 5)
  BAD_REQUEST = 'BAD_REQUEST',
  INVALID_TOKEN = 'INVALID_TOKEN',
  FORBIDDEN = 'FORBIDDEN',
  CONFLICT = 'CONFLICT',
  PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE',
  UNAVAILABLE = 'UNAVAILABLE',
}

/** Codes after which the socket is closed (SPEC 4.9), with their close codes. */
export const FATAL_SOCKET_CODES: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.TOKEN_EXPIRED]: 4001,
  [ErrorCode.UNAUTHORIZED]: 4003,
};

export interface DomainErrorOptions {
  retryAfterMs?: number;
  cause?: unknown;
}

/** A failure with a domain code. Services throw it; each transport maps it once. */
export class DomainError extends Error {
  readonly retryAfterMs?: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: DomainErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'DomainError';
    this.retryAfterMs = options.retryAfterMs;
  }

  get recoverable(): boolean {
    return FATAL_SOCKET_CODES[this.code] === undefined;
  }
}

export function isDomainError(error: unknown): error is DomainError {
  return error instanceof DomainError;
}
