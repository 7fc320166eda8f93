import { Injectable, Logger } from '@nestjs/common';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { defer, Observable, of, throwError, timer } from 'rxjs';
import { catchError, finalize, retry, tap } from 'rxjs/operators';
import { AppConfig, InjectConfig, LlmProviderConfig } from '@chatbox/common';
import { LlmFailureTracker, ProviderFailingAlert, ProviderRecovered } from './failure-tracker';
import { isLlmProviderError, LlmProviderError, VoiceUnavailableError } from './llm-errors';
import type { LlmErrorCode, LlmProvider, ModelInfo, ReplyEvent, ReplyRequest } from './llm.types';
import { AnthropicProvider } from './providers/anthropic.provider';
import { DemoProvider } from './providers/demo.provider';
import { DifyProvider } from './providers/dify.provider';
import { createOpenAiClient, OpenAiProvider } from './providers/openai.provider';
import {
  beforeFinal,
  FinalEvent,
  finishedWithin,
  firstOutputWithin,
  ReplyTimeout,
  requireEndMarker,
} from './reply-operators';
import { isRetryable, LLM_RETRY_ATTEMPTS, retryDelay } from './retry';
import { estimateTokens } from './turns';

/** Voice used for text-to-speech when `TTS_VOICE` is not set. */
export const DEFAULT_TTS_VOICE = 'alloy';
/** Longest provider detail quoted in an operator log line. */
const LOG_DETAIL_CHARS = 200;

/** Client-safe texts of the `error` event; provider details only go to the log. */
export const LLM_ERROR_MESSAGES: Record<LlmErrorCode, string> = {
  LLM_UNAVAILABLE: 'The AI service is temporarily unavailable. Please try again later.',
  LLM_TIMEOUT: 'The AI service took too long to respond.',
  LLM_ERROR: 'The AI service could not complete the reply.',
};

/**
 * What `LlmService` reports for metrics (SPEC 12), without libs/llm knowing the metrics module:
 * `request` per reply asked; `first_token` with the latency in seconds; `tokens` with prompt +
 * completion tokens; `error` per failed reply (with its code); `done` when a reply stream is over
 * (`outcome` end, error or cancelled) — pairs with `request` for a streams-in-flight gauge.
 */
export interface LlmObserverEvent {
  provider: string;
  kind: 'request' | 'first_token' | 'tokens' | 'error' | 'done';
  value?: number;
  code?: LlmErrorCode;
  outcome?: 'end' | 'error' | 'cancelled';
}
export type LlmObserver = (event: LlmObserverEvent) => void;

/** What one reply has done so far (across its attempts). */
interface ReplyProgress {
  provider: string;
  request: ReplyRequest;
  started: number;
  attempts: number;
  firstOutputAt?: number;
  text: string;
  usageSeen: boolean;
  finished: boolean;
}

function where(reply: ReplyProgress): string {
  return `(user ${reply.request.userId}, session ${reply.request.sessionId})`;
}

function errorEvent(code: LlmErrorCode): FinalEvent {
  return { kind: 'error', code, message: LLM_ERROR_MESSAGES[code] };
}

function asProviderError(error: unknown): LlmProviderError {
  if (isLlmProviderError(error)) return error;
  return new LlmProviderError('provider', error instanceof Error ? error.message : String(error), {
    cause: error,
  });
}

/**
 * The models users can pick, and the one entry point for streamed replies.
 *
 * Every provider stream is wrapped here: first-token timeout (`LLM_FIRST_TOKEN_TIMEOUT`, counted
 * from the request across retries), whole-reply timeout (`LLM_STREAM_TIMEOUT`), retries with
 * backoff and `Retry-After` before the first token only, error mapping to client-safe events, and
 * a usage estimate when the provider reported none. The history limit (`LLM_HISTORY_MESSAGES`)
 * is the caller's job: `request.history` is sent as given.
 */
@Injectable()
export class LlmService {
  private readonly logger = new Logger(LlmService.name);
  private readonly providers = new Map<string, LlmProvider>();
  private readonly observers = new Set<LlmObserver>();
  private readonly tracker = new LlmFailureTracker();
  private readonly stt?: { client: OpenAI; config: LlmProviderConfig };
  private readonly tts?: { client: OpenAI; config: LlmProviderConfig };

  /** Emits when a provider fails repeatedly (SPEC 7: ≥ 5 in a row or ≥ 50 % over 5 minutes). */
  readonly providerFailing$: Observable<ProviderFailingAlert> = this.tracker.providerFailing$;
  readonly providerRecovered$: Observable<ProviderRecovered> = this.tracker.providerRecovered$;

  constructor(@InjectConfig() private readonly config: AppConfig) {
    for (const provider of config.llm.providers)
      this.providers.set(provider.id, this.createProvider(provider));
    this.stt = this.voiceClient(config.llm.sttProviderId);
    this.tts = this.voiceClient(config.llm.ttsProviderId);
  }

  /** Configured models in configuration order. */
  models(): ModelInfo[] {
    return this.config.llm.providers.map((provider) => ({ id: provider.id, name: provider.name }));
  }

  get defaultModelId(): string {
    return this.config.llm.defaultModel;
  }

  hasModel(modelId: string): boolean {
    return this.providers.has(modelId);
  }

  /** Adds a metrics observer; returns the function that removes it. */
  observe(observer: LlmObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** Whether a provider is in a failing episode (SPEC 7). */
  isProviderFailing(modelId: string): boolean {
    return this.tracker.isFailing(modelId);
  }

  /**
   * Streams a reply: `delta`/`file`/`usage` events, then exactly one `end` or `error`, then
   * completion; never an Observable error. Unsubscribing cancels the upstream request.
   *
   * The provider's stream, with: an end marker required (a stream cut short is an error), retries
   * before the first output only (`retry`), the first-output and whole-reply deadlines, failures
   * mapped to client-safe `error` events, a usage estimate when the provider reported none, and the
   * observers (metrics, the failure tracker) told of each step.
   */
  stream(request: ReplyRequest): Observable<ReplyEvent> {
    const provider = this.providers.get(request.modelId);
    if (!provider)
      return of({ kind: 'error', code: 'LLM_ERROR', message: `Unknown model ${request.modelId}` } as const);
    const systemPrompt = this.systemPromptFor(request.modelId);
    const { firstTokenTimeoutMs, streamTimeoutMs } = this.config.llm;
    return defer(() => {
      const reply: ReplyProgress = {
        provider: provider.id,
        request,
        started: Date.now(),
        attempts: 0,
        text: '',
        usageSeen: false,
        finished: false,
      };
      this.emitObserver({ provider: provider.id, kind: 'request' });
      return defer(() => {
        reply.attempts++;
        return provider.stream(request, systemPrompt);
      }).pipe(
        requireEndMarker(),
        retry({ delay: (error: unknown) => this.nextAttempt(reply, asProviderError(error)) }),
        firstOutputWithin(firstTokenTimeoutMs),
        finishedWithin(streamTimeoutMs),
        catchError((error: unknown) => of(this.failure(reply, error))),
        beforeFinal((final) => this.estimatedUsage(reply, systemPrompt, final)),
        tap((event) => this.track(reply, event)),
        finalize(() => {
          if (!reply.finished)
            this.emitObserver({ provider: provider.id, kind: 'done', outcome: 'cancelled' });
        }),
      );
    });
  }

  /** Another attempt (after its delay) while nothing reached the user and time allows; else the failure. */
  private nextAttempt(reply: ReplyProgress, error: LlmProviderError): Observable<number> {
    if (reply.firstOutputAt === undefined && isRetryable(error) && reply.attempts < LLM_RETRY_ATTEMPTS) {
      const delay = retryDelay(error, reply.attempts);
      if (Date.now() + delay < reply.started + this.config.llm.firstTokenTimeoutMs) {
        this.logger.warn(
          `LLM provider ${reply.provider}: attempt ${reply.attempts} of ${LLM_RETRY_ATTEMPTS} failed (${this.safeDetail(error.detail, reply.provider)}); retrying in ${delay} ms ${where(reply)}`,
        );
        return timer(delay);
      }
    }
    return throwError(() => error);
  }

  /** The client-safe end of a failed reply; the provider's detail goes to the log only. */
  private failure(reply: ReplyProgress, raw: unknown): FinalEvent {
    if (raw instanceof ReplyTimeout) {
      this.logger.warn(`LLM provider ${reply.provider}: ${raw.message} ${where(reply)}`);
      return errorEvent('LLM_TIMEOUT');
    }
    const error = asProviderError(raw);
    const detail = this.safeDetail(error.detail, reply.provider);
    if (reply.firstOutputAt === undefined && isRetryable(error)) {
      this.logger.error(
        `LLM provider ${reply.provider} unavailable after ${reply.attempts} attempt(s) ${where(reply)}: ${detail}`,
      );
      return errorEvent('LLM_UNAVAILABLE');
    }
    if (error.kind === 'http')
      this.logger.error(
        `LLM provider ${reply.provider} rejected the request with HTTP ${error.status} (check its endpoint, model and API key) ${where(reply)}: ${detail}`,
      );
    else
      this.logger.error(
        `LLM provider ${reply.provider} failed ${reply.firstOutputAt === undefined ? 'before' : 'after'} the first token ${where(reply)}: ${detail}`,
      );
    return errorEvent('LLM_ERROR');
  }

  /** A usage estimate (characters / 4) before the final event when the provider reported none. */
  private estimatedUsage(reply: ReplyProgress, systemPrompt: string, final: FinalEvent): ReplyEvent[] {
    if (reply.usageSeen || (final.kind === 'error' && reply.text.length === 0)) return [];
    const prompt = [systemPrompt, ...reply.request.history.map((turn) => turn.content)].join('\n');
    return [
      {
        kind: 'usage',
        promptTokens: estimateTokens(prompt),
        completionTokens: estimateTokens(reply.text),
        estimated: true,
      },
    ];
  }

  /** What the observers (metrics) and the failure tracker learn from each event. */
  private track(reply: ReplyProgress, event: ReplyEvent): void {
    switch (event.kind) {
      case 'delta':
        reply.text += event.text;
        this.firstOutput(reply);
        return;
      case 'file':
        this.firstOutput(reply);
        return;
      case 'usage':
        reply.usageSeen = true;
        this.emitObserver({
          provider: reply.provider,
          kind: 'tokens',
          value: event.promptTokens + event.completionTokens,
        });
        return;
      case 'error':
      case 'end':
        reply.finished = true;
        if (event.kind === 'error')
          this.emitObserver({ provider: reply.provider, kind: 'error', code: event.code });
        this.emitObserver({ provider: reply.provider, kind: 'done', outcome: event.kind });
        this.tracker.record(reply.provider, event.kind === 'end', reply.request.userId);
        return;
    }
  }

  private firstOutput(reply: ReplyProgress): void {
    if (reply.firstOutputAt !== undefined) return;
    reply.firstOutputAt = Date.now();
    this.emitObserver({
      provider: reply.provider,
      kind: 'first_token',
      value: (reply.firstOutputAt - reply.started) / 1000,
    });
  }

  get sttAvailable(): boolean {
    return this.stt !== undefined;
  }

  get ttsAvailable(): boolean {
    return this.tts !== undefined;
  }

  /**
   * Speech to text through the STT provider's `POST {endpoint}/audio/transcriptions`.
   * @throws VoiceUnavailableError when no STT provider is configured or the call fails.
   */
  async transcribe(audio: Buffer, filename: string, mimeType: string): Promise<string> {
    if (!this.stt) throw new VoiceUnavailableError('transcribe', 'Speech-to-text is not configured.');
    try {
      const result = await this.stt.client.audio.transcriptions.create(
        {
          file: await toFile(audio, filename, { type: mimeType }),
          model: this.stt.config.model ?? '',
        },
        { maxRetries: 0 },
      );
      return result.text.trim();
    } catch (error) {
      this.logger.error(
        `STT provider ${this.stt.config.id} failed: ${this.safeDetail(error instanceof Error ? error.message : String(error), this.stt.config.id)}`,
      );
      throw new VoiceUnavailableError('transcribe', 'The voice message could not be transcribed.', {
        cause: error,
      });
    }
  }

  /**
   * Text to speech through the TTS provider's `POST {endpoint}/audio/speech` (voice `TTS_VOICE`,
   * else `DEFAULT_TTS_VOICE`).
   * @throws VoiceUnavailableError when no TTS provider is configured or the call fails.
   */
  async synthesize(text: string): Promise<{ audio: Buffer; mimeType: string }> {
    if (!this.tts) throw new VoiceUnavailableError('synthesize', 'Text-to-speech is not configured.');
    try {
      const response = await this.tts.client.audio.speech.create(
        {
          model: this.tts.config.model ?? '',
          input: text,
          voice: this.config.llm.ttsVoice ?? DEFAULT_TTS_VOICE,
          response_format: 'mp3',
        },
        { maxRetries: 0 },
      );
      const audio = Buffer.from(await response.arrayBuffer());
      const mimeType = response.headers.get('content-type')?.split(';')[0].trim() || 'audio/mpeg';
      return { audio, mimeType };
    } catch (error) {
      this.logger.error(
        `TTS provider ${this.tts.config.id} failed: ${this.safeDetail(error instanceof Error ? error.message : String(error), this.tts.config.id)}`,
      );
      throw new VoiceUnavailableError('synthesize', 'The reply could not be turned into speech.', {
        cause: error,
      });
    }
  }

  private systemPromptFor(modelId: string): string {
    const provider = this.config.llm.providers.find((candidate) => candidate.id === modelId);
    return provider?.systemPrompt ?? this.config.llm.systemPrompt;
  }

  private createProvider(provider: LlmProviderConfig): LlmProvider {
    const options = { requestTimeoutMs: this.config.llm.streamTimeoutMs };
    switch (provider.type) {
      case 'demo':
        return new DemoProvider(provider.id);
      case 'openai':
        return new OpenAiProvider(provider, options);
      case 'anthropic':
        return new AnthropicProvider(provider, options);
      case 'dify':
        return new DifyProvider(provider);
    }
  }

  private voiceClient(
    providerId: string | undefined,
  ): { client: OpenAI; config: LlmProviderConfig } | undefined {
    const config = this.config.llm.providers.find((provider) => provider.id === providerId);
    if (!config || config.type !== 'openai') return undefined;
    return {
      client: createOpenAiClient(config, { requestTimeoutMs: this.config.llm.streamTimeoutMs }),
      config,
    };
  }

  private emitObserver(event: LlmObserverEvent): void {
    for (const observer of this.observers) {
      try {
        observer(event);
      } catch (error) {
        this.logger.warn(`LLM observer failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  /** A provider detail for the operator log: the provider's API key removed, length bounded. */
  private safeDetail(detail: string, providerId: string): string {
    const key = this.config.llm.providers.find((provider) => provider.id === providerId)?.apiKey;
    const cleaned = key ? detail.split(key).join('[key]') : detail;
    return cleaned.replace(/\s+/g, ' ').slice(0, LOG_DETAIL_CHARS);
  }
}
