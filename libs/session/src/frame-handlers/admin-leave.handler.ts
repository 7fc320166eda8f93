import { Injectable } from '@nestjs/common';
import { DomainError, ErrorCode } from '@chatbox/common';
import { ClientConnection } from '../ports/client-connection';
import { TakeoverService } from '../takeover.service';
import { FrameHandler } from './frame-handler';

/** `admin_leave`: an assisting admin hands the session back. */
@Injectable()
export class AdminLeaveHandler extends FrameHandler<'admin_leave'> {
  readonly types = ['admin_leave'] as const;

  constructor(private readonly takeover: TakeoverService) {
    super();
  }

  async handle(connection: ClientConnection): Promise<void> {
    if (!connection.principal.isAdmin)
      throw new DomainError(ErrorCode.INVALID_FORMAT, 'admin_leave is for admins');
    if (!connection.sessionId)
      throw new DomainError(ErrorCode.NOT_FOUND, 'You are not assisting this session');
    return this.takeover.leave(connection.principal, connection.sessionId, 'admin_leave');
  }
}
