import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { INestApplication } from '@nestjs/common';
import type { DestinationStream } from 'pino';
import { MongoClient, Db } from 'mongodb';
import { AppConfig, Environment, loadConfig, ProtocolLimits } from '@chatbox/common';
import { ConversationStore } from '@chatbox/storage';
import { createChatboxApp } from '../../apps/chatbox/src/bootstrap';
import { loggerOptions } from '../../apps/chatbox/src/logging';
import { TEST_JWT_SECRET } from './tokens';

export interface TestApp {
  app: INestApplication;
  config: AppConfig;
  /** http://127.0.0.1:<port><prefix> */
  baseUrl: string;
  /** ws://127.0.0.1:<port><prefix>/ws */
  wsUrl: string;
  /** Raw driver on the same database, to check what was really stored. */
  db: Db;
  /**
   * The stored session document with its stored messages (collection `messages`, in order) as `msgs`
   * (`id` = `_id`), after every write this app had queued reached the database.
   */
  stored(sessionId: string | undefined): Promise<StoredView | null>;
  /** Stops the app; drops its database unless `keepDatabase` (another app of the test goes on with it). */
  close(options?: { keepDatabase?: boolean }): Promise<void>;
}

export type StoredView = Record<string, any> & { msgs: any[] };

/** See `TestApp.stored`. */
export async function storedView(db: Db, sessionId: string | undefined): Promise<StoredView | null> {
  const session = await db.collection('sessions').findOne({ _id: sessionId as never });
  if (!session) return null;
  const messages = await db.collection('messages').find({ sid: sessionId }).sort({ seq: 1, ts: 1 }).toArray();
  return { ...session, msgs: messages.map((message) => ({ id: message._id, ...message })) };
}

export function testMongoUri(): string {
  const uri = process.env.TEST_MONGO_URI;
  if (!uri) throw new Error('TEST_MONGO_URI is not set: run through the integration Jest project');
  return uri;
}

/** A unique database per test app, so test files never see each other's data. */
export function uniqueDatabaseName(label = 'test'): string {
  return `${label.replace(/[^a-z0-9]/gi, '').slice(0, 20)}_${randomBytes(4).toString('hex')}`;
}

export function testConfig(env: Environment = {}, limits: Partial<ProtocolLimits> = {}): AppConfig {
  return loadConfig(
    {
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      JWT_SECRET: TEST_JWT_SECRET,
      MONGO_URI: testMongoUri(),
      MONGO_DATABASE: uniqueDatabaseName(),
      MONGO_RETRY_DELAY: '10ms',
      ...env,
    },
    limits,
  );
}

/**
 * Boots the real application (all modules, real FerretDB) on a free port. `logTo` receives the app's
 * log lines (JSON, as in production) instead of stdout.
 */
export async function startTestApp(
  env: Environment = {},
  limits: Partial<ProtocolLimits> = {},
  options: { logTo?: DestinationStream } = {},
): Promise<TestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'chatbox-test-data-'));
  const config = testConfig({ DATA_DIR: dataDir, ...env }, limits);
  const app = await createChatboxApp(
    config,
    options.logTo ? loggerOptions(config, options.logTo) : undefined,
  );
  // A fixed PORT lets a test name the app's own origin in its configuration (ALLOWED_ORIGINS).
  await app.listen(env.PORT ? config.port : 0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  // Small: the Jest workers share one FerretDB, whose pool the driver pools must stay below.
  const client = await MongoClient.connect(config.mongo.uri as string, { maxPoolSize: 5 });
  const db = client.db(config.mongo.database);
  return {
    app,
    config,
    baseUrl: `http://127.0.0.1:${port}${config.pathPrefix}`,
    wsUrl: `ws://127.0.0.1:${port}${config.pathPrefix}/ws`,
    db,
    stored: async (sessionId) => {
      await app.get(ConversationStore).settle();
      return storedView(db, sessionId);
    },
    close: async (options = {}) => {
      await app.close();
      if (!options.keepDatabase) await db.dropDatabase().catch(() => undefined);
      await client.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
