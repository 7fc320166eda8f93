import { rmSync } from 'node:fs';
import { MongoClient } from 'mongodb';
import { databaseTempDir, embeddedDatabase } from './embedded-database';

/**
 * A private embedded database (FerretDB on PostgreSQL) for fault tests (the shared one must keep
 * running): stopped, killed, paused and resumed at will, on the same port and data across restarts.
 * The faults hit FerretDB, the process the service talks to.
 */
export class TestDatabase {
  private readonly dataDir = databaseTempDir('chatbox-faultdb-');
  readonly process = embeddedDatabase(this.dataDir);
  private client?: MongoClient;

  async start(): Promise<string> {
    return this.process.start();
  }

  get uri(): string {
    return this.process.uri;
  }

  /** SIGSTOP: connections stay open, nothing answers (a stalled database). */
  pause(): void {
    this.process.killForTest('SIGSTOP');
  }

  resume(): void {
    this.process.killForTest('SIGCONT');
  }

  /** The database goes away outright (connections refused until `start`). */
  async kill(): Promise<void> {
    await this.client?.close().catch(() => undefined);
    this.client = undefined;
    this.process.killForTest('SIGKILL');
    await this.process.stop();
  }

  /** A raw driver on the database (fresh after a restart). */
  async db(name: string) {
    this.client ??= await MongoClient.connect(this.uri);
    return this.client.db(name);
  }

  async close(): Promise<void> {
    await this.client?.close().catch(() => undefined);
    this.resume();
    await this.process.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
