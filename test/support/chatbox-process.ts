import { ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { freePort } from '@chatbox/storage';
import { builtEntry } from './built-service';
import { TEST_JWT_SECRET } from './tokens';

const root = resolve(__dirname, '../..');

/**
 * The built service (`dist/`) as a child process that tests stop, kill and start again on the same
 * port and data: readiness is awaited on `readyz`, not on log text.
 */
export class ChatboxProcess {
  child?: ChildProcess;
  output = '';
  port = 0;

  constructor(private readonly env: NodeJS.ProcessEnv) {}

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}/chatbox`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/chatbox/ws`;
  }

  /** Starts it and waits until `readyz` answers 200. */
  async start(timeoutMs = 60_000): Promise<void> {
    this.port ||= await freePort();
    this.output = '';
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      JWT_SECRET: TEST_JWT_SECRET,
      ...this.env,
      PORT: String(this.port),
    };
    if (!this.env.MONGO_URI) delete env.MONGO_URI;
    const child = spawn(process.execPath, [builtEntry()], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`service exited during start-up:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`service not ready in time:\n${this.output}`);
      const ready = await fetch(`${this.baseUrl}/readyz`).catch(() => undefined);
      if (ready?.status === 200) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Sends the signal and resolves with the exit code once the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill(signal);
    return exited;
  }
}
