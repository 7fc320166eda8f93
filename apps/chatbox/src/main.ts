import 'reflect-metadata';
import { INestApplication } from '@nestjs/common';
import type { Params, PinoLogger } from 'nestjs-pino';
import { AppConfig, ConfigValidationError, ShutdownState, TokenService, loadConfig } from '@chatbox/common';
import {
  DataDirInUseError,
  DataDirLock,
  EmbeddedDatabase,
  equalityLookups,
  MongoUnreachableError,
  ensureMongoReachable,
  redactMongoUri,
} from '@chatbox/storage';
import { join } from 'node:path';
import { createChatboxApp } from './bootstrap';
import { contextLogger, loggerOptions } from './logging';
import { StartupError, assertPortFree, listenProblem, startBanner } from './start-up';

const DEV_TOKEN_TTL_SECONDS = 7 * 24 * 3600;
const EXIT_CONFIG = 2;
const EXIT_START_FAILED = 1;

/** Failures whose message says everything: one line, no stack trace. */
const SELF_EXPLAINING = [StartupError, DataDirInUseError, MongoUnreachableError];

function loadConfigOrExit(): AppConfig {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigValidationError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(EXIT_CONFIG);
  }
}

/** Everything start-up acquired, released in reverse order on failure and at shutdown. */
class Resources {
  lock?: DataDirLock;
  database?: EmbeddedDatabase;

  async release(): Promise<void> {
    await this.database?.stop();
    this.lock?.release();
  }
}

/** One service per data directory, taken before anything touches the files (SPEC 11). */
function lockDataDir(config: AppConfig, resources: Resources, log: PinoLogger): void {
  resources.lock = new DataDirLock(config.storage.dataDir);
  const stale = resources.lock.acquire();
  if (stale) log.info(`took over the data directory lock of an earlier run (pid ${stale.pid} is gone)`);
  process.once('exit', () => resources.lock?.release());
}

async function startEmbeddedDatabase(
  config: AppConfig,
  resources: Resources,
  logging: Params,
): Promise<string> {
  const dataDir = join(config.storage.dataDir, 'db');
  const databaseLog = contextLogger(logging, 'EmbeddedDatabase');
  const database = new EmbeddedDatabase({
    ferretDbBinary: config.embeddedDb.binary,
    provisionScript: config.embeddedDb.provisionScript,
    dataDir,
    backend: config.embeddedDb.backend,
    supervise: true,
    log: (level, message) => databaseLog[level](message),
  });
  resources.database = database;
  const startedAt = Date.now();
  try {
    config.mongo.uri = await database.start();
  } catch (error) {
    throw new StartupError(`the embedded database did not start: ${(error as Error).message}`);
  }
  databaseLog.info(`${database.description} up in ${Date.now() - startedAt} ms`);
  return `embedded ${database.description} at ${config.mongo.uri}, data in ${dataDir}`;
}

/**
 * Data directory, port and database before Nest builds anything, each refusal one line. Returns
 * the database in use, for the banner.
 */
async function prepare(config: AppConfig, resources: Resources, logging: Params): Promise<string> {
  const log = contextLogger(logging, 'main');
  if (config.mongo.uri) {
    await assertPortFree(config.port);
    await ensureMongoReachable(config.mongo.uri, config.mongo.connectTimeoutMs);
    return `MongoDB at ${redactMongoUri(config.mongo.uri)} (database ${config.mongo.database})`;
  }
  lockDataDir(config, resources, log);
  await assertPortFree(config.port);
  return startEmbeddedDatabase(config, resources, logging);
}

/**
 * The embedded PostgreSQL's indexes for FerretDB's equality filters (docs/decisions/0010). They
 * only make lookups fast: without them the service is slower, not wrong, so a failure is a warning.
 */
async function ensureLookupIndexes(config: AppConfig, resources: Resources, log: PinoLogger): Promise<void> {
  try {
    const created = await resources.database?.ensureLookupIndexes(
      config.mongo.database,
      equalityLookups(config.mongo.collection),
    );
    if (created?.length) log.info(`created lookup indexes ${created.join(', ')}`);
  } catch (error) {
    log.warn(`lookup indexes not created (lookups read whole tables): ${(error as Error).message}`);
  }
}

function printReady(app: INestApplication, config: AppConfig, database: string, log: PinoLogger): void {
  const base = `http://localhost:${config.port}${config.pathPrefix}`;
  if (config.isProduction) {
    log.info({ url: `${base}/`, database }, `ready on ${base}/ with ${database}; SIGTERM drains and stops`);
    return;
  }
  const tokens = app.get(TokenService);
  const userToken = tokens.sign({ user_id: 'dev-user', roles: [], name: 'Dev User' }, DEV_TOKEN_TTL_SECONDS);
  const adminToken = tokens.sign(
    { user_id: 'dev-admin', roles: ['admin'], name: 'Dev Admin' },
    DEV_TOKEN_TTL_SECONDS,
  );
  process.stdout.write(`${startBanner({ config, database, userToken, adminToken })}\n`);
}

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logging = loggerOptions(config);
  const log = contextLogger(logging, 'main');
  if (!config.encryption.key) log.warn('ENCRYPTION_KEY is not set: message text is stored as plaintext');

  const resources = new Resources();
  process.once('uncaughtException', (error) => {
    log.error({ err: error }, `uncaught exception: ${error.message}`);
    void resources.release().finally(() => process.exit(EXIT_START_FAILED));
  });

  let app: INestApplication;
  let database: string;
  try {
    database = await prepare(config, resources, logging);
    app = await createChatboxApp(config, logging);
    // Initialised first: the collections exist (createIndexes) before the lookup indexes are made.
    await app.init();
    await ensureLookupIndexes(config, resources, log);
    await app.listen(config.port).catch((error: unknown) => {
      throw listenProblem(error, config.port);
    });
  } catch (error) {
    if (SELF_EXPLAINING.some((kind) => error instanceof kind)) log.error((error as Error).message);
    else log.error({ err: error }, `start-up failed: ${(error as Error).message}`);
    await resources.release();
    process.exit(EXIT_START_FAILED);
  }
  printReady(app, config, database, log);

  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info(`${signal} received: draining`);
    const deadline = setTimeout(() => {
      log.error('shutdown deadline passed: exiting');
      void resources.release().finally(() => process.exit(EXIT_START_FAILED));
    }, config.protocol.shutdownDeadlineMs);
    deadline.unref();
    app.get(ShutdownState).beginDraining();
    try {
      await app.close();
    } catch (error) {
      log.error(`error while closing: ${(error as Error).message}`);
    }
    await resources.release();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

void main();
