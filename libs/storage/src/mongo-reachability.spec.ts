import { MongoUnreachableError, redactMongoUri } from './mongo-reachability';

describe('redactMongoUri', () => {
  it.each([
    ['mongodb://bob:hunter2@db.example:27017/?authSource=admin', 'mongodb://bob:***@db.example:27017/'],
    [
      'mongodb+srv://bob:hunter2@cluster0.example.net/chat?retryWrites=true',
      'mongodb+srv://bob:***@cluster0.example.net/chat',
    ],
    ['mongodb://h1:27017,h2:27017/chat?replicaSet=rs0', 'mongodb://h1:27017,h2:27017/chat'],
    ['mongodb://127.0.0.1:27017', 'mongodb://127.0.0.1:27017/'],
    ['mongodb://bob@db/?tlsCertificateKeyFilePassword=hunter2', 'mongodb://bob:***@db/'],
    ['not a uri hunter2', '[unparsable MongoDB URI]'],
  ])('%s → %s', (uri, shown) => expect(redactMongoUri(uri)).toBe(shown));
});

describe('MongoUnreachableError', () => {
  it('is one line naming the address and what to check, never the password', () => {
    const error = new MongoUnreachableError(
      'mongodb://bob:hunter2@db.example:27017/',
      10_000,
      new Error('getaddrinfo ENOTFOUND db.example\n  more detail'),
    );
    expect(error.message).not.toContain('\n');
    expect(error.message).not.toContain('hunter2');
    expect(error.message).toContain('mongodb://bob:***@db.example:27017/ within 10 s');
    expect(error.message).toContain('getaddrinfo ENOTFOUND db.example more detail');
    expect(error.message).toContain('check that MONGO_URI');
  });
});
