import type { WebSocket } from 'ws';
import { ChatboxEvents, type Principal } from '@chatbox/common';
import { SocketConnection } from './socket-connection';

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
const at = '2024-05-01T10:00:00.000Z';
const principal = { userId: 'u1', name: 'U', roles: [], isAdmin: false } as unknown as Principal;

function fakeSocket(readyState: number, bufferedAmount = 0) {
  return { readyState, bufferedAmount, send: jest.fn(), close: jest.fn() };
}

describe('SocketConnection', () => {
  it.each([CONNECTING, CLOSING, CLOSED])(
    'never writes to a socket that is not open (readyState %i)',
    (state) => {
      const socket = fakeSocket(state);
      const events = new ChatboxEvents();
      const onSent = jest.spyOn(events, 'emit');
      const connection = new SocketConnection(socket as unknown as WebSocket, principal, 1024, events);
      connection.send({ kind: 'pong', at });
      connection.close(1001, 'server_shutdown');
      expect(socket.send).not.toHaveBeenCalled();
      expect(socket.close).not.toHaveBeenCalled();
      expect(onSent).not.toHaveBeenCalled();
      expect(connection.isOpen).toBe(false);
    },
  );

  it('writes one JSON frame to an open socket and counts it', () => {
    const socket = fakeSocket(OPEN);
    const events = new ChatboxEvents();
    const onSent = jest.spyOn(events, 'emit');
    const connection = new SocketConnection(socket as unknown as WebSocket, principal, 1024, events);
    connection.send({ kind: 'pong', sessionId: 's1', at });
    expect(socket.send).toHaveBeenCalledTimes(1);
    expect(JSON.parse(socket.send.mock.calls[0][0])).toEqual({
      type: 'pong',
      sender: 'system',
      session_id: 's1',
      timestamp: at,
    });
    expect(onSent).toHaveBeenCalledTimes(1);
  });

  it('closes a client that stops reading (1013) instead of buffering without bound', () => {
    const socket = fakeSocket(OPEN, 4096);
    const connection = new SocketConnection(socket as unknown as WebSocket, principal, 1024);
    connection.send({ kind: 'pong', at });
    expect(socket.send).not.toHaveBeenCalled();
    expect(socket.close).toHaveBeenCalledWith(1013, 'client too slow');
  });
});
