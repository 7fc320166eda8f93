/**
 * Metric names of SPEC section 12. They are kept from the earlier service because dashboards and
 * alert rules already query them: never rename one (a gauge ending in `_total` included).
 */
export const METRIC = {
  websocketConnections: 'chatbox_websocket_connections_total',
  messagesReceived: 'chatbox_messages_received_total',
  messagesSent: 'chatbox_messages_sent_total',
  messageErrors: 'chatbox_message_errors_total',
  llmRequests: 'chatbox_llm_requests_total',
  llmErrors: 'chatbox_llm_errors_total',
  tokensUsed: 'chatbox_tokens_used_total',
  llmLatency: 'chatbox_llm_latency_seconds',
  activeSessions: 'chatbox_active_sessions_total',
  sessionsCreated: 'chatbox_sessions_created_total',
  sessionsEnded: 'chatbox_sessions_ended_total',
  adminTakeovers: 'chatbox_admin_takeovers_total',
  mongoOperation: 'chatbox_mongodb_operation_seconds',
  rateLimitBlocked: 'chatbox_ratelimit_blocked_total',
  websocketConnectionDuration: 'chatbox_websocket_connection_duration_seconds',
  httpRequestDuration: 'chatbox_http_request_duration_seconds',
  // [ext]
  llmStreamsInFlight: 'chatbox_llm_streams_in_flight',
  humanWait: 'chatbox_human_wait_seconds',
  notificationsSent: 'chatbox_notifications_sent_total',
  notificationsFailed: 'chatbox_notifications_failed_total',
  redisUp: 'chatbox_redis_up',
  orphanedReplies: 'chatbox_orphaned_replies_total',
  replyFramesRecovered: 'chatbox_reply_frames_recovered_total',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/** Every chatbox metric name, for tests and docs that must list them all. */
export const ALL_METRIC_NAMES: readonly MetricName[] = Object.values(METRIC);

/**
 * Histogram buckets in seconds, chosen around each quantity's expected range and its limits
 * (first token within LLM_FIRST_TOKEN_TIMEOUT = 30 s, sockets living minutes to hours, ...).
 */
export const BUCKETS = {
  llmFirstToken: [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60],
  mongoOperation: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  httpRequest: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  websocketConnection: [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400],
  humanWait: [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200],
} as const;

/** Endpoint label for requests that matched no route (404s, static files): keeps cardinality bounded. */
export const UNMATCHED_ENDPOINT = 'unmatched';
