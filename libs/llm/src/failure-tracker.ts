import { Observable, Subject } from 'rxjs';

/** SPEC 7: alert when a provider failed this many replies in a row… */
export const LLM_FAILING_CONSECUTIVE = 5;
/** …or at least this share of its replies… */
export const LLM_FAILING_RATE = 0.5;
/** …over this window… */
export const LLM_FAILING_WINDOW_MS = 5 * 60_000;
/** …once the window holds this many replies (one failure out of one is no trend). */
export const LLM_FAILING_MIN_REQUESTS = 10;

export interface ProviderFailingAlert {
  provider: string;
  reason: 'consecutive' | 'rate';
  consecutiveFailures: number;
  /** Replies and failures inside the window. */
  requests: number;
  failures: number;
  failureRate: number;
  windowMs: number;
  /** Distinct users whose replies failed inside the window. */
  affectedUsers: number;
  /** First failure inside the window, and when the alert fired. */
  since: Date;
  at: Date;
}

export interface ProviderRecovered {
  provider: string;
  at: Date;
}

interface Outcome {
  at: number;
  ok: boolean;
  userId?: string;
}

interface ProviderState {
  outcomes: Outcome[];
  consecutiveFailures: number;
  failing: boolean;
}

/**
 * Counts reply outcomes per provider and announces when one is failing repeatedly (SPEC 7).
 * `providerFailing$` emits once per failing episode; the episode ends (`providerRecovered$`) at the
 * first success after which neither condition holds any more. Cancelled replies are not outcomes.
 */
export class LlmFailureTracker {
  private readonly failing = new Subject<ProviderFailingAlert>();
  private readonly recovered = new Subject<ProviderRecovered>();
  private readonly states = new Map<string, ProviderState>();
  readonly providerFailing$: Observable<ProviderFailingAlert> = this.failing.asObservable();
  readonly providerRecovered$: Observable<ProviderRecovered> = this.recovered.asObservable();

  constructor(private readonly now: () => number = Date.now) {}

  record(provider: string, ok: boolean, userId?: string): void {
    const at = this.now();
    const state = this.stateOf(provider);
    state.outcomes.push({ at, ok, userId });
    while (state.outcomes.length > 0 && state.outcomes[0].at <= at - LLM_FAILING_WINDOW_MS)
      state.outcomes.shift();
    state.consecutiveFailures = ok ? 0 : state.consecutiveFailures + 1;
    const failures = state.outcomes.filter((outcome) => !outcome.ok);
    const requests = state.outcomes.length;
    const failureRate = requests === 0 ? 0 : failures.length / requests;
    const byCount = state.consecutiveFailures >= LLM_FAILING_CONSECUTIVE;
    const byRate = requests >= LLM_FAILING_MIN_REQUESTS && failureRate >= LLM_FAILING_RATE;
    if (!state.failing && (byCount || byRate)) {
      state.failing = true;
      this.failing.next({
        provider,
        reason: byCount ? 'consecutive' : 'rate',
        consecutiveFailures: state.consecutiveFailures,
        requests,
        failures: failures.length,
        failureRate,
        windowMs: LLM_FAILING_WINDOW_MS,
        affectedUsers: new Set(failures.map((outcome) => outcome.userId ?? '')).size,
        since: new Date(failures[0]?.at ?? at),
        at: new Date(at),
      });
    } else if (state.failing && ok && !byCount && !byRate) {
      state.failing = false;
      this.recovered.next({ provider, at: new Date(at) });
    }
  }

  isFailing(provider: string): boolean {
    return this.states.get(provider)?.failing ?? false;
  }

  private stateOf(provider: string): ProviderState {
    let state = this.states.get(provider);
    if (!state) {
      state = { outcomes: [], consecutiveFailures: 0, failing: false };
      this.states.set(provider, state);
    }
    return state;
  }
}
