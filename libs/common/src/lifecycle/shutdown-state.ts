import { Injectable } from '@nestjs/common';

/** Flips once on SIGTERM so readiness answers 503 at once and no new sockets are accepted (SPEC 13). */
@Injectable()
export class ShutdownState {
  private draining = false;

  get isDraining(): boolean {
    return this.draining;
  }

  beginDraining(): void {
    this.draining = true;
  }
}
