import { ArgumentMetadata, Injectable, PipeTransform } from '@nestjs/common';
import { DomainError, ErrorCode } from '../errors';
import { CLIENT_ID_CHARACTERS, findUnstorableText, isClientId, UNSTORABLE_TEXT_RULE } from './text-rules';

/**
 * A route parameter that is an id the server issued (session id, file id, share token): anything
 * outside the id alphabet is a 400 naming the parameter, before any lookup (SPEC 5).
 */
@Injectable()
export class ClientIdPipe implements PipeTransform<string, string> {
  transform(value: string, metadata: ArgumentMetadata): string {
    if (typeof value === 'string' && isClientId(value)) return value;
    throw new DomainError(ErrorCode.BAD_REQUEST, `${metadata.data ?? 'id'} must be ${CLIENT_ID_CHARACTERS}`);
  }
}

/**
 * Every route parameter and query value of every route (registered globally): text the database
 * cannot store is a 400 naming the parameter, so no lookup or filter ever carries it. Bodies are
 * checked by their own parsers.
 */
@Injectable()
export class StorableInputPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type !== 'param' && metadata.type !== 'query') return value;
    const at = findUnstorableText(value, metadata.data ?? '');
    if (at !== undefined)
      throw new DomainError(ErrorCode.BAD_REQUEST, `${at || metadata.type} ${UNSTORABLE_TEXT_RULE}`);
    return value;
  }
}
