import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { redactUrl } from '../redact-url';
import { DomainError, ErrorCode } from './error-codes';

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.BAD_REQUEST]: HttpStatus.BAD_REQUEST,
  [ErrorCode.INVALID_FORMAT]: HttpStatus.BAD_REQUEST,
  [ErrorCode.MISSING_FIELD]: HttpStatus.BAD_REQUEST,
  [ErrorCode.INVALID_MODEL]: HttpStatus.BAD_REQUEST,
  [ErrorCode.INVALID_FILE]: HttpStatus.BAD_REQUEST,
  [ErrorCode.UNAUTHORIZED]: HttpStatus.UNAUTHORIZED,
  [ErrorCode.INVALID_TOKEN]: HttpStatus.UNAUTHORIZED,
  [ErrorCode.TOKEN_EXPIRED]: HttpStatus.UNAUTHORIZED,
  [ErrorCode.FORBIDDEN]: HttpStatus.FORBIDDEN,
  [ErrorCode.NOT_FOUND]: HttpStatus.NOT_FOUND,
  [ErrorCode.CONFLICT]: HttpStatus.CONFLICT,
  [ErrorCode.SESSION_ENDED]: HttpStatus.CONFLICT,
  [ErrorCode.PAYLOAD_TOO_LARGE]: HttpStatus.PAYLOAD_TOO_LARGE,
  [ErrorCode.TOO_MANY_REQUESTS]: HttpStatus.TOO_MANY_REQUESTS,
  [ErrorCode.SERVICE_BUSY]: HttpStatus.SERVICE_UNAVAILABLE,
  [ErrorCode.UNAVAILABLE]: HttpStatus.SERVICE_UNAVAILABLE,
  [ErrorCode.DATABASE_ERROR]: HttpStatus.SERVICE_UNAVAILABLE,
  [ErrorCode.LLM_UNAVAILABLE]: HttpStatus.SERVICE_UNAVAILABLE,
};

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: ErrorCode.BAD_REQUEST,
  401: ErrorCode.UNAUTHORIZED,
  403: ErrorCode.FORBIDDEN,
  404: ErrorCode.NOT_FOUND,
  405: ErrorCode.BAD_REQUEST,
  409: ErrorCode.CONFLICT,
  413: ErrorCode.PAYLOAD_TOO_LARGE,
  415: ErrorCode.BAD_REQUEST,
  429: ErrorCode.TOO_MANY_REQUESTS,
  503: ErrorCode.UNAVAILABLE,
};

export interface RestErrorBody {
  error: string;
  code: string;
  message: string;
  retry_after_ms?: number;
}

function messageOf(exception: HttpException): string {
  const body = exception.getResponse();
  if (typeof body === 'string') return body;
  const message = (body as { message?: unknown }).message;
  if (Array.isArray(message)) return message.join('; ');
  if (typeof message === 'string') return message;
  return exception.message;
}

/** The one place where failures become REST error bodies (SPEC 5). */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpError');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const request = host.switchToHttp().getRequest<Request>();
    let status: number = HttpStatus.INTERNAL_SERVER_ERROR;
    let code: string = ErrorCode.INTERNAL_ERROR;
    let message = 'Internal server error';
    let retryAfterMs: number | undefined;

    if (exception instanceof DomainError) {
      status = STATUS_BY_CODE[exception.code] ?? HttpStatus.INTERNAL_SERVER_ERROR;
      code = exception.code;
      message = status === HttpStatus.INTERNAL_SERVER_ERROR ? message : exception.message;
      retryAfterMs = exception.retryAfterMs;
    } else if (exception instanceof HttpException) {
      status = exception.getStatus();
      code = CODE_BY_STATUS[status] ?? (status >= 500 ? ErrorCode.INTERNAL_ERROR : ErrorCode.BAD_REQUEST);
      message = status >= 500 ? message : messageOf(exception);
    } else if (isBodyParserError(exception)) {
      status = exception.status;
      code = CODE_BY_STATUS[status] ?? ErrorCode.BAD_REQUEST;
      message = status === 413 ? 'Request body too large' : 'Malformed request body';
    }

    if (status >= 500) {
      this.logger.error(
        { err: exception, correlationId: request.headers['x-request-id'], path: redactUrl(request.path) },
        'request failed',
      );
    }
    const body: RestErrorBody = { error: message, code, message };
    if (retryAfterMs !== undefined) {
      body.retry_after_ms = retryAfterMs;
      response.setHeader('Retry-After', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
    }
    if (!response.headersSent) response.status(status).json(body);
  }
}

function isBodyParserError(error: unknown): error is { status: number; type: string } {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { status?: unknown }).status === 'number' &&
    typeof (error as { type?: unknown }).type === 'string'
  );
}
