import { Injectable } from '@nestjs/common';

/** Flips once on SIGTERM so readiness answers 503 at once and no new sockets are accepted (SPEC 13). */
@Injectable()
export class ShutdownState {
  private since?: number;

  get isDraining(): boolean {
    return this.since !== undefined;
  }

  /**
   * When draining began (Date.now()): the process's shutdown deadline counts from here, so every
   * step of the drain knows what is left of it.
   */
  get drainingSince(): number | undefined {
    return this.since;
  }

  beginDraining(): void {
    this.since ??= Date.now();
  }
}
