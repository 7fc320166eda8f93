import { Injectable, OnModuleDestroy } from '@nestjs/common';
import Redis from 'ioredis';
import { AppConfig, InjectConfig } from '@chatbox/common';

const REDIS_PING_TIMEOUT_MS = 2_000;

/** Redis reachability for readiness, only when REDIS_URL is configured. */
@Injectable()
export class RedisHealth implements OnModuleDestroy {
  private client?: Redis;

  constructor(@InjectConfig() private readonly config: AppConfig) {}

  get configured(): boolean {
    return this.config.redisUrl !== undefined;
  }

  async ping(): Promise<{ ok: boolean; latencyMs: number; error?: string }> {
    const started = performance.now();
    try {
      this.client ??= new Redis(this.config.redisUrl as string, {
        lazyConnect: true,
        maxRetriesPerRequest: 1,
        connectTimeout: REDIS_PING_TIMEOUT_MS,
        commandTimeout: REDIS_PING_TIMEOUT_MS,
      });
      if (this.client.status === 'wait') await this.client.connect();
      await this.client.ping();
      return { ok: true, latencyMs: Math.round(performance.now() - started) };
    } catch (error) {
      return {
        ok: false,
        latencyMs: Math.round(performance.now() - started),
        error: (error as Error).message,
      };
    }
  }

  async onModuleDestroy(): Promise<void> {
    this.client?.disconnect();
  }
}
