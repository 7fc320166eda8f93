import { Injectable } from '@nestjs/common';
import { InjectConnection } from '@nestjs/mongoose';
import type { Connection } from 'mongoose';
import { AppConfig, InjectConfig } from '@chatbox/common';
import { MongoRetry } from './mongo-retry';

export interface PingResult {
  ok: boolean;
  latencyMs: number;
  error?: string;
}

/** MongoDB reachability for readiness: a `ping` bounded by a timeout, never hanging the probe. */
@Injectable()
export class MongoHealth {
  constructor(
    @InjectConnection() private readonly connection: Connection,
    private readonly retry: MongoRetry,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  async ping(): Promise<PingResult> {
    const started = performance.now();
    const timeoutMs = this.config.protocol.mongoPingTimeoutMs;
    // Under load the connection pool is busy with real work that just succeeded: that is the answer
    // (a ping would queue behind it and make readiness flap exactly when the service is busiest).
    if (this.retry.answeredWithin(timeoutMs)) return { ok: true, latencyMs: 0 };
    let timer: NodeJS.Timeout | undefined;
    try {
      const db = this.connection.db;
      if (!db || this.connection.readyState !== 1) throw new Error('not connected');
      await Promise.race([
        db.command({ ping: 1 }, { timeoutMS: timeoutMs }),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`ping timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return { ok: true, latencyMs: Math.round(performance.now() - started) };
    } catch (error) {
      return {
        ok: false,
        latencyMs: Math.round(performance.now() - started),
        error: (error as Error).message,
      };
    } finally {
      clearTimeout(timer);
    }
  }
}
