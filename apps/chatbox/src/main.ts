import 'reflect-metadata';
import { INestApplication } from '@nestjs/common';
import { AppConfig, ConfigValidationError, ShutdownState, TokenService, loadConfig } from '@chatbox/common';
import { FerretDbProcess } from '@chatbox/storage';
import { join } from 'node:path';
import { createChatboxApp } from './bootstrap';

const DEV_TOKEN_TTL_SECONDS = 7 * 24 * 3600;

function log(level: 'info' | 'warn' | 'error', message: string): void {
  const line = JSON.stringify({ level, time: new Date().toISOString(), context: 'main', msg: message });
  (level === 'info' ? process.stdout : process.stderr).write(`${line}\n`);
}

async function startEmbeddedDatabase(config: AppConfig): Promise<FerretDbProcess> {
  const database = new FerretDbProcess({
    binary: config.embeddedDb.binary,
    provisionScript: config.embeddedDb.provisionScript,
    dataDir: join(config.storage.dataDir, 'db'),
    supervise: true,
    log,
  });
  config.mongo.uri = await database.start();
  log(
    'info',
    `embedded FerretDB listening on ${config.mongo.uri} (data in ${join(config.storage.dataDir, 'db')})`,
  );
  return database;
}

function printStartBanner(app: INestApplication, config: AppConfig): void {
  const base = `http://localhost:${config.port}${config.pathPrefix}`;
  log('info', `chatbox listening on ${base}/ (health ${base}/healthz, ready ${base}/readyz)`);
  if (config.isProduction) return;
  const tokens = app.get(TokenService);
  const userToken = tokens.sign({ user_id: 'dev-user', roles: [], name: 'Dev User' }, DEV_TOKEN_TTL_SECONDS);
  const adminToken = tokens.sign(
    { user_id: 'dev-admin', roles: ['admin'], name: 'Dev Admin' },
    DEV_TOKEN_TTL_SECONDS,
  );
  const lines = [
    '',
    '  Chat (development user):',
    `    ${base}/?token=${userToken}`,
    '  Admin dashboard (development admin):',
    `    ${base}/admin-page?token=${adminToken}`,
    config.jwt.generated
      ? '  (JWT_SECRET is random for this run: these tokens stop working after a restart)'
      : '',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigValidationError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  if (!config.encryption.key) log('warn', 'ENCRYPTION_KEY is not set: message text is stored as plaintext');

  const database = config.mongo.uri ? undefined : await startEmbeddedDatabase(config);
  const stopDatabase = async () => database?.stop();
  process.once('uncaughtException', (error) => {
    log('error', `uncaught exception: ${error.stack ?? error.message}`);
    void stopDatabase().finally(() => process.exit(1));
  });

  let app: INestApplication;
  try {
    app = await createChatboxApp(config);
    await app.listen(config.port);
  } catch (error) {
    log('error', `start-up failed: ${(error as Error).stack ?? error}`);
    await stopDatabase();
    process.exit(1);
  }
  printStartBanner(app, config);

  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log('info', `${signal} received: draining`);
    const deadline = setTimeout(() => {
      log('error', 'shutdown deadline passed: exiting');
      void stopDatabase().finally(() => process.exit(1));
    }, config.protocol.shutdownDeadlineMs);
    deadline.unref();
    app.get(ShutdownState).beginDraining();
    try {
      await app.close();
    } catch (error) {
      log('error', `error while closing: ${(error as Error).message}`);
    }
    await stopDatabase();
    log('info', 'stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

void main();
