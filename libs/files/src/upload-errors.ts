import { HttpException, HttpStatus } from '@nestjs/common';
import { DomainError, ErrorCode } from '@chatbox/common';

export const badUpload = (message: string): DomainError => new DomainError(ErrorCode.BAD_REQUEST, message);

export const uploadTooLarge = (limit: number): DomainError =>
  new DomainError(ErrorCode.PAYLOAD_TOO_LARGE, `File is larger than the upload limit of ${limit} bytes`);

export const quotaExceeded = (quota: number, left: number): DomainError =>
  new DomainError(
    ErrorCode.PAYLOAD_TOO_LARGE,
    `Upload quota of ${quota} bytes reached: ${left} bytes left for this user`,
  );

/**
 * Refused content answers 415 Unsupported Media Type; the REST filter gives it code `BAD_REQUEST`
 * and the message names the reason (e.g. "Executable content is not allowed: ELF executable").
 */
export const unsupportedContent = (message: string): HttpException =>
  new HttpException(message, HttpStatus.UNSUPPORTED_MEDIA_TYPE);
