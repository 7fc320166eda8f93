import { DomainError, ErrorCode } from '@chatbox/common';

/** Control characters (line breaks, tabs, NUL, …) have no place in a one-line title. */
const CONTROL_CHARACTERS = /\p{Cc}/u;

/**
 * The body of `PATCH /sessions/:id`: exactly `{ "name": "<1..maxChars characters>" }`, trimmed.
 * Anything else is a 400 naming the field.
 */
export function parseRenameBody(body: unknown, maxChars: number): string {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new DomainError(ErrorCode.BAD_REQUEST, 'The body must be a JSON object like {"name": "…"}');
  const unknown = Object.keys(body).find((key) => key !== 'name');
  if (unknown !== undefined)
    throw new DomainError(ErrorCode.BAD_REQUEST, `unknown field ${unknown.slice(0, 64)}`);
  const { name } = body as { name?: unknown };
  if (name === undefined) throw new DomainError(ErrorCode.BAD_REQUEST, 'name is required');
  if (typeof name !== 'string') throw new DomainError(ErrorCode.BAD_REQUEST, 'name must be a string');
  const trimmed = name.trim();
  if (trimmed === '') throw new DomainError(ErrorCode.BAD_REQUEST, 'name must not be empty');
  if ([...trimmed].length > maxChars)
    throw new DomainError(ErrorCode.BAD_REQUEST, `name must be at most ${maxChars} characters`);
  if (CONTROL_CHARACTERS.test(trimmed))
    throw new DomainError(ErrorCode.BAD_REQUEST, 'name must be one line without control characters');
  return trimmed;
}
