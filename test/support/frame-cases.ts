import type { OutboundEvent, ServerFrame } from '../../libs/gateway/src/frame-mapper';

/**
 * Every kind of event a socket is sent, each with the exact frame the gateway renders for it (SPEC 4):
 * the unit spec of the mapper checks the rendering, docs/asyncapi.yaml is checked against the frames.
 * Typed per kind, so a new kind does not compile without its cases.
 */
export type FrameCases = {
  [Kind in OutboundEvent['kind']]: [Extract<OutboundEvent, { kind: Kind }>, ServerFrame][];
};

const at = '2024-05-01T10:00:00.000Z';
const admin = { id: 'admin-1', name: 'Ada' };
const models = [
  { id: 'demo', name: 'Demo' },
  { id: 'gpt', name: 'GPT' },
];
const usage = { tokens: 12, promptTokens: 8, completionTokens: 4, responseTimeMs: 950, firstTokenMs: 120 };
const figures = {
  tokens: '12',
  prompt_tokens: '8',
  completion_tokens: '4',
  response_time_ms: '950',
  first_token_ms: '120',
};
const reply = { sessionId: 's1', messageId: 'm1' };
const aiFrame = { type: 'ai_response', sender: 'ai', timestamp: at, id: 'm1', session_id: 's1' } as const;

export const FRAME_CASES: FrameCases = {
  greeting: [
    [
      { kind: 'greeting', userId: 'u1', sessionId: 's-next', newSession: true, models, modelId: 'demo', at },
      {
        type: 'connection_status',
        sender: 'system',
        timestamp: at,
        user_id: 'u1',
        session_id: 's-next',
        content: 'Connected',
        models,
        model_id: 'demo',
        metadata: { new_session: 'true' },
      },
    ],
    [
      {
        kind: 'greeting',
        userId: 'u1',
        sessionId: 's1',
        newSession: false,
        models: [],
        modelId: 'gpt',
        assistingAdmin: admin,
        at,
      },
      {
        type: 'connection_status',
        sender: 'system',
        timestamp: at,
        user_id: 'u1',
        session_id: 's1',
        content: 'Connected',
        models: [],
        model_id: 'gpt',
        metadata: { admin_name: 'Ada', admin_id: 'admin-1' },
      },
    ],
    [
      { kind: 'greeting', userId: 'u1', sessionId: 's1', newSession: false, models, modelId: 'demo', at },
      {
        type: 'connection_status',
        sender: 'system',
        timestamp: at,
        user_id: 'u1',
        session_id: 's1',
        content: 'Connected',
        models,
        model_id: 'demo',
      },
    ],
  ],
  sessionBound: [
    [
      { kind: 'sessionBound', sessionId: 's1', at },
      { type: 'connection_status', sender: 'system', timestamp: at, session_id: 's1' },
    ],
  ],
  modelChanged: [
    [
      { kind: 'modelChanged', sessionId: 's1', modelId: 'gpt', at },
      {
        type: 'connection_status',
        sender: 'system',
        timestamp: at,
        session_id: 's1',
        content: 'Model changed to gpt',
        model_id: 'gpt',
      },
    ],
  ],
  helpRequestSent: [
    [
      { kind: 'helpRequestSent', sessionId: 's1', at },
      {
        type: 'connection_status',
        sender: 'system',
        timestamp: at,
        session_id: 's1',
        content: 'Help request sent. An administrator will join your session shortly.',
      },
    ],
  ],
  pong: [
    [
      { kind: 'pong', at },
      { type: 'pong', sender: 'system', timestamp: at },
    ],
    [
      { kind: 'pong', sessionId: 's1', at },
      { type: 'pong', sender: 'system', timestamp: at, session_id: 's1' },
    ],
  ],
  failure: [
    [
      {
        kind: 'failure',
        sessionId: 's1',
        code: 'TOO_MANY_REQUESTS',
        message: 'Slow down',
        recoverable: true,
        retryAfterMs: 1500,
        at,
      },
      {
        type: 'error',
        sender: 'system',
        timestamp: at,
        session_id: 's1',
        error: { code: 'TOO_MANY_REQUESTS', message: 'Slow down', recoverable: true, retry_after: 1500 },
      },
    ],
    [
      { kind: 'failure', code: 'TOKEN_EXPIRED', message: 'Token expired', recoverable: false, at },
      {
        type: 'error',
        sender: 'system',
        timestamp: at,
        error: { code: 'TOKEN_EXPIRED', message: 'Token expired', recoverable: false },
      },
    ],
  ],
  messageRelayed: [
    [
      {
        kind: 'messageRelayed',
        sessionId: 's1',
        messageId: 'u-msg',
        messageType: 'user_message',
        sender: 'user',
        content: 'Hello',
        at,
      },
      {
        type: 'user_message',
        sender: 'user',
        timestamp: at,
        id: 'u-msg',
        session_id: 's1',
        content: 'Hello',
      },
    ],
    [
      {
        kind: 'messageRelayed',
        sessionId: 's1',
        messageId: 'a-msg',
        messageType: 'user_message',
        sender: 'admin',
        content: 'I am here',
        admin,
        at,
      },
      {
        type: 'user_message',
        sender: 'admin',
        timestamp: at,
        id: 'a-msg',
        session_id: 's1',
        content: 'I am here',
        metadata: { admin_name: 'Ada', admin_id: 'admin-1' },
      },
    ],
    [
      {
        kind: 'messageRelayed',
        sessionId: 's1',
        messageId: 'f-msg',
        messageType: 'file_upload',
        sender: 'user',
        content: '',
        fileId: 'file-1',
        fileUrl: '/chatbox/files/file-1?sig=x',
        meta: { topic: 'invoice', file_name: 'a.pdf', mime_type: 'application/pdf', file_size: '10' },
        at,
      },
      {
        type: 'file_upload',
        sender: 'user',
        timestamp: at,
        id: 'f-msg',
        session_id: 's1',
        file_id: 'file-1',
        file_url: '/chatbox/files/file-1?sig=x',
        metadata: { topic: 'invoice', file_name: 'a.pdf', mime_type: 'application/pdf', file_size: '10' },
      },
    ],
    [
      {
        kind: 'messageRelayed',
        sessionId: 's1',
        messageId: 'v-msg',
        messageType: 'voice_message',
        sender: 'user',
        content: 'what was said',
        fileId: 'file-2',
        fileUrl: '/chatbox/files/file-2?sig=y',
        meta: {
          file_name: 'a.webm',
          mime_type: 'audio/webm',
          file_size: '20',
          transcription: 'what was said',
        },
        at,
      },
      {
        type: 'voice_message',
        sender: 'user',
        timestamp: at,
        id: 'v-msg',
        session_id: 's1',
        content: 'what was said',
        file_id: 'file-2',
        file_url: '/chatbox/files/file-2?sig=y',
        metadata: {
          file_name: 'a.webm',
          mime_type: 'audio/webm',
          file_size: '20',
          transcription: 'what was said',
        },
      },
    ],
    [
      {
        kind: 'messageRelayed',
        sessionId: 's1',
        messageId: 'ai-file',
        messageType: 'file_upload',
        sender: 'ai',
        content: '',
        fileUrl: 'https://provider.example/chart.png',
        modelId: 'gpt',
        meta: { reply_id: 'm1', model_id: 'gpt', file_name: 'chart.png', external: 'true' },
        at,
      },
      {
        type: 'file_upload',
        sender: 'ai',
        timestamp: at,
        id: 'ai-file',
        session_id: 's1',
        file_url: 'https://provider.example/chart.png',
        model_id: 'gpt',
        metadata: { reply_id: 'm1', model_id: 'gpt', file_name: 'chart.png', external: 'true' },
      },
    ],
  ],
  typing: [
    [
      { kind: 'typing', sessionId: 's1', typing: true, at },
      {
        type: 'typing_indicator',
        sender: 'user',
        timestamp: at,
        session_id: 's1',
        metadata: { typing: 'true' },
      },
    ],
    [
      { kind: 'typing', sessionId: 's1', typing: false, adminName: 'Ada', at },
      {
        type: 'typing_indicator',
        sender: 'admin',
        timestamp: at,
        session_id: 's1',
        metadata: { typing: 'false', admin_name: 'Ada' },
      },
    ],
  ],
  replyStarted: [
    [
      { kind: 'replyStarted', ...reply, modelId: 'demo', at },
      {
        type: 'loading',
        sender: 'ai',
        timestamp: at,
        session_id: 's1',
        model_id: 'demo',
        metadata: { message_id: 'm1' },
      },
    ],
  ],
  replyDelta: [
    [
      { kind: 'replyDelta', ...reply, modelId: 'demo', seq: 3, text: 'Hel', at },
      {
        ...aiFrame,
        content: 'Hel',
        model_id: 'demo',
        metadata: { streaming: 'true', done: 'false', message_id: 'm1', seq: '3' },
      },
    ],
  ],
  replyCatchUp: [
    [
      { kind: 'replyCatchUp', ...reply, modelId: 'demo', seq: 1, text: 'Hello', at },
      {
        ...aiFrame,
        content: 'Hello',
        model_id: 'demo',
        metadata: { streaming: 'true', done: 'false', catch_up: 'true', message_id: 'm1', seq: '1' },
      },
    ],
  ],
  replyDone: [
    [
      { kind: 'replyDone', ...reply, modelId: 'demo', seq: 4, ending: { status: 'complete', usage }, at },
      {
        ...aiFrame,
        model_id: 'demo',
        metadata: { streaming: 'true', done: 'true', message_id: 'm1', seq: '4', ...figures },
      },
    ],
    [
      {
        kind: 'replyDone',
        ...reply,
        modelId: 'demo',
        seq: 2,
        ending: { status: 'stopped', usage: { ...usage, firstTokenMs: undefined }, reason: 'max_reply_size' },
        at,
      },
      {
        ...aiFrame,
        model_id: 'demo',
        metadata: {
          streaming: 'true',
          done: 'true',
          message_id: 'm1',
          seq: '2',
          tokens: '12',
          prompt_tokens: '8',
          completion_tokens: '4',
          response_time_ms: '950',
          stopped: 'true',
          reason: 'max_reply_size',
        },
      },
    ],
    [
      {
        kind: 'replyDone',
        ...reply,
        modelId: 'demo',
        seq: 0,
        ending: { status: 'error', usage, errorCode: 'LLM_TIMEOUT' },
        at,
      },
      {
        ...aiFrame,
        model_id: 'demo',
        metadata: {
          streaming: 'true',
          done: 'true',
          message_id: 'm1',
          seq: '0',
          ...figures,
          error: 'LLM_TIMEOUT',
        },
      },
    ],
    [
      // Another instance ended the reply of a gone one: no figures, and maybe no model.
      { kind: 'replyDone', ...reply, seq: 5, ending: { status: 'interrupted' }, at },
      {
        ...aiFrame,
        metadata: {
          streaming: 'true',
          done: 'true',
          message_id: 'm1',
          seq: '5',
          stopped: 'true',
          status: 'interrupted',
        },
      },
    ],
  ],
  replyReplayed: [
    [
      {
        kind: 'replyReplayed',
        ...reply,
        modelId: 'demo',
        text: 'Hello',
        ending: { status: 'complete', usage },
        at,
      },
      {
        ...aiFrame,
        model_id: 'demo',
        content: 'Hello',
        metadata: { done: 'true', message_id: 'm1', ...figures, status: 'complete', streaming: 'false' },
      },
    ],
    [
      {
        kind: 'replyReplayed',
        ...reply,
        modelId: 'demo',
        text: 'Hel',
        ending: { status: 'complete', usage, errorCode: 'DATABASE_ERROR' },
        at,
      },
      {
        ...aiFrame,
        model_id: 'demo',
        content: 'Hel',
        metadata: {
          done: 'true',
          message_id: 'm1',
          ...figures,
          error: 'DATABASE_ERROR',
          status: 'error',
          streaming: 'false',
        },
      },
    ],
    [
      {
        kind: 'replyReplayed',
        ...reply,
        modelId: 'demo',
        text: 'He',
        ending: { status: 'stopped', usage },
        at,
      },
      {
        ...aiFrame,
        model_id: 'demo',
        content: 'He',
        metadata: {
          done: 'true',
          message_id: 'm1',
          ...figures,
          stopped: 'true',
          status: 'stopped',
          streaming: 'false',
        },
      },
    ],
    [
      { kind: 'replyReplayed', ...reply, text: 'H', ending: { status: 'interrupted' }, at },
      {
        ...aiFrame,
        content: 'H',
        metadata: {
          done: 'true',
          message_id: 'm1',
          stopped: 'true',
          status: 'interrupted',
          streaming: 'false',
        },
      },
    ],
  ],
  replyStored: [
    [
      {
        kind: 'replyStored',
        ...reply,
        modelId: 'demo',
        text: 'Hello',
        meta: { model_id: 'demo', status: 'complete', tokens: '12', tokens_estimated: 'true' },
        at,
      },
      {
        ...aiFrame,
        content: 'Hello',
        model_id: 'demo',
        metadata: {
          model_id: 'demo',
          status: 'complete',
          tokens: '12',
          tokens_estimated: 'true',
          message_id: 'm1',
          streaming: 'false',
          done: 'true',
        },
      },
    ],
  ],
  adminJoined: [
    [
      { kind: 'adminJoined', sessionId: 's1', admin, at },
      {
        type: 'admin_join',
        sender: 'admin',
        timestamp: at,
        session_id: 's1',
        content: 'Ada has joined the conversation',
        metadata: { admin_id: 'admin-1', admin_name: 'Ada' },
      },
    ],
  ],
  adminLeft: [
    [
      { kind: 'adminLeft', sessionId: 's1', admin, at },
      {
        type: 'admin_leave',
        sender: 'admin',
        timestamp: at,
        session_id: 's1',
        content: 'Ada has left the conversation',
        metadata: { admin_id: 'admin-1', admin_name: 'Ada' },
      },
    ],
  ],
  sessionEnded: [
    [
      { kind: 'sessionEnded', sessionId: 's1', elsewhere: false, at },
      {
        type: 'notification',
        sender: 'system',
        timestamp: at,
        session_id: 's1',
        content: 'This conversation has ended.',
        metadata: { reason: 'session_ended', event: 'session_ended' },
      },
    ],
    [
      { kind: 'sessionEnded', sessionId: 's1', elsewhere: true, at },
      {
        type: 'notification',
        sender: 'system',
        timestamp: at,
        session_id: 's1',
        content: 'This conversation has ended.',
        metadata: { reason: 'session_ended_elsewhere', event: 'session_ended' },
      },
    ],
  ],
  sessionRolledOver: [
    [
      { kind: 'sessionRolledOver', sessionId: 's1', at },
      {
        type: 'notification',
        sender: 'system',
        timestamp: at,
        session_id: 's1',
        content: 'This conversation reached its size limit and continues in a new session.',
        metadata: { reason: 'message_limit' },
      },
    ],
  ],
  nothingToStop: [
    [
      { kind: 'nothingToStop', sessionId: 's1', at },
      {
        type: 'notification',
        sender: 'system',
        timestamp: at,
        session_id: 's1',
        content: 'No reply is being generated.',
        metadata: { reason: 'nothing_to_stop' },
      },
    ],
  ],
  serverShutdown: [
    [
      { kind: 'serverShutdown', at },
      {
        type: 'notification',
        sender: 'system',
        timestamp: at,
        content: 'The server is restarting; reconnect in a moment.',
        metadata: { reason: 'server_shutdown' },
      },
    ],
  ],
  dashboardUpdate: (
    [
      ['sessionStarted', 'session_started', undefined],
      ['sessionEnded', 'session_ended', undefined],
      ['takeoverStarted', 'takeover_started', admin],
      ['takeoverEnded', 'takeover_ended', admin],
      ['helpResolved', 'help_resolved', admin],
    ] as const
  ).map(([change, event, who]) => [
    { kind: 'dashboardUpdate', change, sessionId: 's1', userId: 'u1', ...(who ? { admin: who } : {}), at },
    {
      type: 'notification',
      sender: 'system',
      timestamp: at,
      session_id: 's1',
      metadata: { event, user_id: 'u1', ...(who ? { admin_id: who.id, admin_name: who.name } : {}) },
    },
  ]),
  dashboardAlert: [
    [
      {
        kind: 'dashboardAlert',
        sessionId: 's1',
        summary: 'Help requested in "Refund"',
        facts: { event: 'help_requested', time: '2024-05-01T10:00:00Z', session_name: 'Refund' },
        at: '2024-05-01T10:00:00Z',
      },
      {
        type: 'notification',
        sender: 'system',
        timestamp: '2024-05-01T10:00:00Z',
        session_id: 's1',
        content: 'Help requested in "Refund"',
        metadata: { event: 'help_requested', time: '2024-05-01T10:00:00Z', session_name: 'Refund' },
      },
    ],
    [
      {
        kind: 'dashboardAlert',
        summary: 'The database is unreachable',
        facts: { event: 'database_unreachable' },
        at,
      },
      {
        type: 'notification',
        sender: 'system',
        timestamp: at,
        content: 'The database is unreachable',
        metadata: { event: 'database_unreachable' },
      },
    ],
  ],
};
