import { Injectable } from '@nestjs/common';
import { AppConfig, InjectConfig, Principal } from '@chatbox/common';
import {
  HelpQueueService,
  SessionDetail,
  SessionRow,
  SessionService,
  TakeoverService,
  toSessionDetail,
  toSessionRow,
} from '@chatbox/session';
import { ConversationStore, SessionRecord, SessionRepository } from '@chatbox/storage';
import { concurrency } from './concurrency';
import { ListQuery, RangeQuery } from './dto/admin-query';

/** Metrics read at most this many sessions of a range; beyond it the answer says it is partial. */
const METRICS_SESSION_CAP = 100_000;

export interface AdminMetrics {
  active_sessions: number;
  total_sessions: number;
  avg_concurrent: number;
  max_concurrent: number;
  total_tokens: number;
  avg_response_time: number;
  max_response_time: number;
  admin_assisted_count: number;
  help_requested_count: number;
  message_count: number;
  time_range: { start: string; end: string };
  truncated?: boolean;
}

export interface TimeseriesBucket {
  start: string;
  end: string;
  sessions_started: number;
  avg_concurrent: number;
  max_concurrent: number;
  total_tokens: number;
  avg_response_time: number;
  message_count: number;
}

export interface AdminSessionDetail extends SessionDetail {
  user_id: string;
  takeovers: { admin_id: string; admin_name: string; start: string; end?: string }[];
}

/**
 * The admin REST API's use cases (SPEC 5): session lists and details, takeover, leave and help
 * resolution (through the session module), and the dashboard numbers. Counters live on the
 * documents (SPEC 8).
 */
@Injectable()
export class AdminService {
  constructor(
    private readonly repository: SessionRepository,
    private readonly store: ConversationStore,
    private readonly sessions: SessionService,
    private readonly takeovers: TakeoverService,
    private readonly helpQueue: HelpQueueService,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  async list(query: ListQuery): Promise<{ rows: SessionRow[]; total: number }> {
    const { sessions, total } = await this.repository.list(query);
    return {
      rows: this.store
        .withLocalState(sessions)
        .map((session) => toSessionRow(session, { includeShareToken: false })),
      total,
    };
  }

  async detail(principal: Principal, sessionId: string): Promise<AdminSessionDetail> {
    const { session, messages } = await this.sessions.readable(principal, sessionId);
    const takeovers = session.assists.map((assist) => ({
      admin_id: assist.adminId,
      admin_name: assist.adminName,
      start: new Date(assist.start).toISOString(),
      end: new Date(assist.end).toISOString(),
    }));
    const current = session.assistingSince
      ? [
          {
            admin_id: session.assistingAdminId ?? '',
            admin_name: session.assistingAdminName ?? '',
            start: session.assistingSince.toISOString(),
          },
        ]
      : [];
    return {
      ...toSessionDetail(session, messages),
      user_id: session.userId,
      takeovers: [...takeovers, ...current],
    };
  }

  async takeover(admin: Principal, sessionId: string) {
    const session = await this.takeovers.take(admin, sessionId);
    return {
      message: 'Takeover initiated successfully',
      session_id: session.id,
      admin_id: admin.userId,
      admin_name: admin.name,
    };
  }

  async leave(admin: Principal, sessionId: string): Promise<void> {
    await this.takeovers.leave(admin, sessionId, 'api');
  }

  resolveHelp(admin: Principal, sessionId: string): Promise<void> {
    return this.helpQueue.resolve(admin, sessionId);
  }

  cannedReplies(): { replies: string[] } {
    return { replies: this.config.admin.cannedReplies };
  }

  async metrics(range: RangeQuery, now = new Date()): Promise<AdminMetrics> {
    const { overlapping, truncated } = await this.overlapping(range);
    const started = overlapping.filter((session) => inRange(session.startedAt, range));
    const { average, max } = concurrency(
      intervals(overlapping, now),
      range.start.getTime(),
      range.end.getTime(),
    );
    return {
      active_sessions: await this.repository.countActive(),
      total_sessions: started.length,
      avg_concurrent: average,
      max_concurrent: max,
      ...this.totals(started),
      admin_assisted_count: started.filter((session) => session.adminAssisted || session.assistingSince)
        .length,
      help_requested_count: started.filter((session) => session.helpRequested).length,
      time_range: { start: range.start.toISOString(), end: range.end.toISOString() },
      ...(truncated ? { truncated: true } : {}),
    };
  }

  async timeseries(
    range: RangeQuery,
    now = new Date(),
  ): Promise<{ bucket_ms: number; buckets: TimeseriesBucket[] }> {
    const bucketMs = range.bucketMs as number;
    const { overlapping } = await this.overlapping(range);
    const all = intervals(overlapping, now);
    const buckets: TimeseriesBucket[] = [];
    for (let from = range.start.getTime(); from < range.end.getTime(); from += bucketMs) {
      const to = Math.min(from + bucketMs, range.end.getTime());
      const bucketRange = { start: new Date(from), end: new Date(to) };
      const started = overlapping.filter((session) => inRange(session.startedAt, bucketRange, true));
      const { average, max } = concurrency(all, from, to);
      const totals = this.totals(started);
      buckets.push({
        start: bucketRange.start.toISOString(),
        end: bucketRange.end.toISOString(),
        sessions_started: started.length,
        avg_concurrent: average,
        max_concurrent: max,
        total_tokens: totals.total_tokens,
        avg_response_time: totals.avg_response_time,
        message_count: totals.message_count,
      });
    }
    return { bucket_ms: bucketMs, buckets };
  }

  private async overlapping(
    range: RangeQuery,
  ): Promise<{ overlapping: SessionRecord[]; truncated: boolean }> {
    const overlapping = await this.repository.findOverlapping(
      range.start,
      range.end,
      METRICS_SESSION_CAP + 1,
    );
    const truncated = overlapping.length > METRICS_SESSION_CAP;
    return { overlapping: truncated ? overlapping.slice(0, METRICS_SESSION_CAP) : overlapping, truncated };
  }

  private totals(sessions: SessionRecord[]) {
    let responseSum = 0;
    let responseCount = 0;
    for (const session of sessions) {
      if (session.responseCount !== undefined && session.responseTimeSumMs !== undefined) {
        responseSum += session.responseTimeSumMs;
        responseCount += session.responseCount;
      } else if (session.avgResponseTimeMs > 0) {
        // Legacy documents carry only the average: count it once.
        responseSum += session.avgResponseTimeMs;
        responseCount += 1;
      }
    }
    return {
      total_tokens: sessions.reduce((sum, session) => sum + session.totalTokens, 0),
      avg_response_time: responseCount > 0 ? Math.round(responseSum / responseCount) : 0,
      max_response_time: sessions.reduce((most, session) => Math.max(most, session.maxResponseTimeMs), 0),
      message_count: sessions.reduce((sum, session) => sum + session.messageCount, 0),
    };
  }
}

function intervals(sessions: SessionRecord[], now: Date) {
  return sessions.map((session) => ({
    start: session.startedAt.getTime(),
    end: (session.endedAt ?? now).getTime(),
  }));
}

function inRange(at: Date, range: { start: Date; end: Date }, halfOpen = false): boolean {
  return at >= range.start && (halfOpen ? at < range.end : at <= range.end);
}
