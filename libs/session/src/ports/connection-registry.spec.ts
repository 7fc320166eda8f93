import type { AppConfig, Principal } from '@chatbox/common';
import type { ClientConnection } from './client-connection';
import { InProcessConnectionRegistry } from './connection-registry';

const CONFIG = { limits: { maxConnections: 100, maxConnectionsPerUser: 10 } } as AppConfig;

function socket(id: string, isAdmin: boolean, sessionId?: string): ClientConnection {
  return {
    id,
    principal: { userId: id, roles: isAdmin ? ['admin'] : [], name: id, isAdmin } satisfies Principal,
    sessionId,
    deliveredSeq: new Map(),
    send: () => undefined,
    close: () => undefined,
  };
}

describe('InProcessConnectionRegistry', () => {
  it('lists as dashboards exactly the admin sockets bound to no session, as they bind, unbind and leave', () => {
    const registry = new InProcessConnectionRegistry(CONFIG);
    const dashboard = socket('admin-1', true);
    const assisting = socket('admin-2', true, 's1');
    const user = socket('user-1', false);
    for (const connection of [dashboard, assisting, user]) registry.add(connection);
    const ids = () => registry.dashboards().map((connection) => connection.id);
    expect(ids()).toEqual(['admin-1']);

    registry.bind(dashboard, 's2');
    registry.bind(assisting, undefined);
    expect(ids()).toEqual(['admin-2']);
    registry.bind(dashboard, undefined);
    expect(ids().sort()).toEqual(['admin-1', 'admin-2']);

    registry.remove(dashboard);
    registry.remove(user);
    expect(ids()).toEqual(['admin-2']);
    // A socket never added (or already gone) is not listed when it is unbound.
    registry.bind(dashboard, undefined);
    expect(ids()).toEqual(['admin-2']);
  });
});
