import { Injectable } from '@nestjs/common';
import { HealthCheckService, HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { AppConfig, InjectConfig, RedisStatus, ShutdownState } from '@chatbox/common';
import { MongoHealth } from '@chatbox/storage';

export interface LivenessBody {
  status: 'healthy';
  timestamp: string;
}

export interface CheckBody {
  /** `degraded`: Redis only (see `readiness`). */
  status: 'ready' | 'not ready' | 'degraded';
  [detail: string]: unknown;
}

export interface ReadinessBody {
  status: 'ready' | 'not ready';
  timestamp: string;
  checks: { mongodb: CheckBody; llm: CheckBody; redis?: CheckBody; shutdown?: CheckBody };
}

type Details = Record<string, Record<string, unknown> & { status: string }>;

/**
 * Readiness through Terminus indicators, reported in the body shape of SPEC 5. Readiness means "can
 * serve": an unreachable Redis is shown (`checks.redis.status: "degraded"`) but does not fail it while
 * the database answers. Every instance still serves its own sockets (only cross-instance delivery and
 * the shared limits fall back to per-instance), and failing it would take every pod out of the Service
 * at once (docs/decisions/0004-multi-instance.md).
 */
@Injectable()
export class HealthService {
  constructor(
    private readonly terminus: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly mongo: MongoHealth,
    private readonly redis: RedisStatus,
    private readonly shutdown: ShutdownState,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  liveness(): LivenessBody {
    return { status: 'healthy', timestamp: new Date().toISOString() };
  }

  async readiness(): Promise<ReadinessBody> {
    const checks = [() => this.checkMongo(), () => this.checkLlm()];
    if (this.redis.configured) checks.push(() => this.checkRedis());
    let details: Details;
    try {
      details = (await this.terminus.check(checks)).details as Details;
    } catch (error) {
      details = ((error as { response?: { details?: Details } }).response?.details ?? {}) as Details;
    }
    const body: ReadinessBody = {
      status: 'ready',
      timestamp: new Date().toISOString(),
      checks: { mongodb: toCheck(details.mongodb), llm: toCheck(details.llm) },
    };
    if (this.redis.configured) {
      const redis = toCheck(details.redis);
      body.checks.redis = redis.status === 'ready' ? redis : { ...redis, status: 'degraded' };
    }
    if (this.shutdown.isDraining) body.checks.shutdown = { status: 'not ready', reason: 'server_shutdown' };
    const allReady = Object.values(body.checks).every(
      (check) => check?.status === 'ready' || check?.status === 'degraded',
    );
    body.status = allReady ? 'ready' : 'not ready';
    return body;
  }

  private async checkMongo(): Promise<HealthIndicatorResult> {
    const session = this.indicators.check('mongodb');
    const ping = await this.mongo.ping();
    return ping.ok
      ? session.up({ latency_ms: ping.latencyMs })
      : session.down({ latency_ms: ping.latencyMs, error: ping.error ?? 'unreachable' });
  }

  /** A configuration check: no paid provider call on every probe. */
  private async checkLlm(): Promise<HealthIndicatorResult> {
    const session = this.indicators.check('llm');
    const providers = this.config.llm.providers.length;
    return providers > 0
      ? session.up({ providers })
      : session.down({ providers, error: 'no provider configured' });
  }

  private async checkRedis(): Promise<HealthIndicatorResult> {
    const session = this.indicators.check('redis');
    const ping = await this.redis.ping();
    return ping.ok
      ? session.up({ latency_ms: ping.latencyMs })
      : session.down({ latency_ms: ping.latencyMs, error: ping.error ?? 'unreachable' });
  }
}

function toCheck(detail: Record<string, unknown> | undefined): CheckBody {
  if (!detail) return { status: 'not ready', error: 'not checked' };
  const { status, ...rest } = detail;
  return { status: status === 'up' ? 'ready' : 'not ready', ...rest };
}
