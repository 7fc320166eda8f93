import { MongoBulkWriteError, MongoNetworkError, MongoServerError } from 'mongodb';
import { InsertBatcher } from './insert-batcher';
import { isTransientMongoError } from './mongo-retry';

interface Doc {
  _id: string;
}

/** A stand-in for the database's insert command: each call waits until the test answers it. */
function database() {
  const calls: { documents: Doc[]; answer: (error?: unknown) => void }[] = [];
  const insertMany = (documents: Doc[]) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ documents, answer: (error) => (error ? reject(error) : resolve()) });
    });
  return { calls, insertMany };
}

const doc = (id: string): Doc => ({ _id: id });
const ids = (documents: Doc[]) => documents.map((document) => document._id);
const settled = () => new Promise((resolve) => setImmediate(resolve));

/** What the driver throws for an unordered insert some of whose documents failed. */
function bulkError(failures: { index: number; code: number; errmsg: string }[]) {
  return Object.assign(new Error('bulk write failed'), {
    writeErrors: failures.map((failure) => ({ ...failure })),
  });
}

describe('InsertBatcher', () => {
  it('sends a document at once when nothing is on its way', async () => {
    const db = database();
    const batcher = new InsertBatcher(db.insertMany, { maxDocuments: 100, maxInFlight: 1 });
    const outcome = batcher.insert(doc('a'));
    expect(db.calls.map((call) => ids(call.documents))).toEqual([['a']]);
    db.calls[0].answer();
    await expect(outcome).resolves.toBe('added');
  });

  it('gathers what arrives while commands are on their way into the next command, in order', async () => {
    const db = database();
    const batcher = new InsertBatcher(db.insertMany, { maxDocuments: 3, maxInFlight: 2 });
    const outcomes = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id) => batcher.insert(doc(id)));
    // Two commands on their way; the rest wait.
    expect(db.calls.map((call) => ids(call.documents))).toEqual([['a'], ['b']]);
    db.calls[0].answer();
    await settled();
    expect(db.calls.map((call) => ids(call.documents))).toEqual([['a'], ['b'], ['c', 'd', 'e']]);
    db.calls[1].answer();
    await settled();
    expect(ids(db.calls[3].documents)).toEqual(['f', 'g']);
    db.calls[2].answer();
    db.calls[3].answer();
    await expect(Promise.all(outcomes)).resolves.toEqual(Array(7).fill('added'));
  });

  it('gives each document of an unordered insert its own outcome', async () => {
    const db = database();
    const batcher = new InsertBatcher(db.insertMany, { maxDocuments: 10, maxInFlight: 1 });
    const first = batcher.insert(doc('first'));
    const outcomes = ['dup', 'ok', 'bad'].map((id) => batcher.insert(doc(id)));
    db.calls[0].answer();
    await settled();
    db.calls[1].answer(
      bulkError([
        { index: 0, code: 11000, errmsg: 'E11000 duplicate key error' },
        { index: 2, code: 2, errmsg: 'document refused' },
      ]),
    );
    await expect(first).resolves.toBe('added');
    await expect(outcomes[0]).resolves.toBe('duplicate');
    await expect(outcomes[1]).resolves.toBe('added');
    await expect(outcomes[2]).rejects.toMatchObject({ message: 'document refused', code: 2 });
  });

  it('re-sends a batch refused as a whole one document per command: only the bad one fails', async () => {
    const db = database();
    const batcher = new InsertBatcher(db.insertMany, { maxDocuments: 10, maxInFlight: 1 });
    const first = batcher.insert(doc('first'));
    const outcomes = ['x', 'bad', 'y'].map((id) => batcher.insert(doc(id)));
    db.calls[0].answer();
    await settled();
    db.calls[1].answer(new MongoServerError({ message: 'value too large', code: 1 }));
    await settled();
    expect(db.calls.slice(2).map((call) => ids(call.documents))).toEqual([['x'], ['bad'], ['y']]);
    db.calls[2].answer();
    db.calls[3].answer(new MongoServerError({ message: 'value too large', code: 1 }));
    db.calls[4].answer();
    await expect(first).resolves.toBe('added');
    await expect(outcomes[0]).resolves.toBe('added');
    await expect(outcomes[1]).rejects.toThrow('value too large');
    await expect(outcomes[2]).resolves.toBe('added');
  });

  it('fails every document of a command the network lost (each is retried by its own writer)', async () => {
    const db = database();
    const batcher = new InsertBatcher(db.insertMany, { maxDocuments: 10, maxInFlight: 1 });
    const first = batcher.insert(doc('first'));
    const outcomes = ['a', 'b'].map((id) => batcher.insert(doc(id)));
    db.calls[0].answer(new MongoNetworkError('connection reset'));
    await expect(first).rejects.toBeInstanceOf(MongoNetworkError);
    await settled();
    db.calls[1].answer(new MongoNetworkError('connection reset'));
    await expect(Promise.all(outcomes.map((outcome) => outcome.catch((error) => error)))).resolves.toEqual([
      expect.any(MongoNetworkError),
      expect.any(MongoNetworkError),
    ]);
    expect(db.calls).toHaveLength(2);
  });

  it('fails every document when the driver wraps a network failure as a bulk error without write errors', async () => {
    const db = database();
    const batcher = new InsertBatcher(db.insertMany, { maxDocuments: 10, maxInFlight: 1 });
    const outcome = batcher.insert(doc('lost'));
    const network = new MongoNetworkError('connect ECONNREFUSED 127.0.0.1:1');
    // What mongodb 7's insertMany throws for it (bulk/common.js: "a driver related error").
    db.calls[0].answer(new MongoBulkWriteError(network, {} as never));
    await expect(outcome).rejects.toBe(network);
    // Every retry judges the wrapped failure by the original (the wrapper's class says "server").
    expect(
      isTransientMongoError(new MongoBulkWriteError(new MongoNetworkError('socket hang up'), {} as never)),
    ).toBe(true);
  });

  it('reports a duplicate of a single document sent alone as already stored', async () => {
    const db = database();
    const batcher = new InsertBatcher(db.insertMany, { maxDocuments: 10, maxInFlight: 1 });
    const outcome = batcher.insert(doc('again'));
    db.calls[0].answer(new MongoServerError({ message: 'E11000 duplicate key error', code: 11000 }));
    await expect(outcome).resolves.toBe('duplicate');
  });
});
