import { createServer } from 'node:net';
import { AppConfig, LlmProviderConfig } from '@chatbox/common';

/** A start-up failure the operator can fix from its message alone: logged as one line, no stack. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

/** EADDRINUSE and EACCES from `listen` as a one-line StartupError; anything else unchanged. */
export function listenProblem(error: unknown, port: number): unknown {
  switch ((error as NodeJS.ErrnoException | undefined)?.code) {
    case 'EADDRINUSE':
      return new StartupError(
        `port ${port} is already in use (another chatbox or another program): stop that one, or start this one with another PORT`,
      );
    case 'EACCES':
      return new StartupError(`port ${port} needs privileges this user lacks: use a PORT above 1023`);
    default:
      return error;
  }
}

/**
 * Fails fast, before the embedded database is started, when PORT is taken. Binds the way Nest
 * will (every interface). A program grabbing the port right after is still caught by `listen`.
 */
export function assertPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error) => reject(listenProblem(error, port)));
    probe.listen(port, () => probe.close(() => resolve()));
  });
}

export interface BannerFacts {
  config: AppConfig;
  /** The database in use, credentials already redacted. */
  database: string;
  /** Development tokens; absent in production. */
  userToken?: string;
  adminToken?: string;
}

function modelsLine(providers: LlmProviderConfig[]): string {
  if (providers.length === 1 && providers[0].type === 'demo')
    return 'Demo model (built in; set LLM_PROVIDER_1_* for a real one)';
  return providers.map((provider) => `${provider.name} (${provider.type})`).join(', ');
}

/**
 * The last lines of a development start-up: where to chat, where to administer, which database,
 * how to stop. Plain text on purpose: it is for the person at the terminal, not for log shippers.
 */
export function startBanner({ config, database, userToken, adminToken }: BannerFacts): string {
  const base = `http://localhost:${config.port}${config.pathPrefix}`;
  const rows: [string, string][] = [
    ['Chat', userToken ? `${base}/?token=${userToken}` : `${base}/`],
    ['Admin', adminToken ? `${base}/admin-page?token=${adminToken}` : `${base}/admin-page`],
    ['Database', database],
    ['Models', modelsLine(config.llm.providers)],
    ['Stop', `Ctrl+C (or kill ${process.pid})`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  const rule = `  ${'-'.repeat(72)}`;
  return [
    '',
    rule,
    `  chatbox is ready (${config.env})`,
    ...rows.map(([label, value]) => `    ${`${label}:`.padEnd(width)}${value}`),
    ...(config.jwt.generated
      ? ['    The tokens are signed with a random JWT_SECRET: they stop working after a restart.']
      : []),
    rule,
    '',
  ].join('\n');
}
