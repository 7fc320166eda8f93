import { MongoClient } from 'mongodb';

/**
 * A MongoDB URI fit for a log line: the password replaced and the options dropped (they may carry
 * secrets such as `tlsCertificateKeyFilePassword`), hosts and database kept.
 */
export function redactMongoUri(uri: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/)(?:([^@/?]*)@)?([^/?]*)(\/[^?]*)?/.exec(uri);
  if (!match) return '[unparsable MongoDB URI]';
  const [, scheme, credentials, hosts, path = '/'] = match;
  const user = credentials === undefined ? '' : `${credentials.split(':')[0]}:***@`;
  return `${scheme}${user}${hosts}${path}`;
}

/** Start-up could not reach MONGO_URI: one line naming the address and what to check. */
export class MongoUnreachableError extends Error {
  constructor(uri: string, timeoutMs: number, cause: unknown) {
    const reason = String((cause as Error)?.message ?? cause)
      .replace(/\s+/g, ' ')
      .trim();
    super(
      `cannot reach MongoDB at ${redactMongoUri(uri)} within ${timeoutMs / 1000} s (${reason}): ` +
        'check that MONGO_URI names a running server reachable from here (host, port, DNS, firewall or ' +
        'NetworkPolicy, user and password, replicaSet and TLS options), or unset MONGO_URI to use the embedded database',
      { cause },
    );
    this.name = 'MongoUnreachableError';
  }
}

/**
 * Pings MONGO_URI once before the app is built, bounded by `timeoutMs`, so a wrong address stops
 * the start within that time with one clear line instead of minutes of silent retries.
 */
export async function ensureMongoReachable(uri: string, timeoutMs: number): Promise<void> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } catch (error) {
    throw new MongoUnreachableError(uri, timeoutMs, error);
  } finally {
    await client.close().catch(() => undefined);
  }
}
