import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
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

  describe('on a real socket', () => {
    let server: WebSocketServer;
    let client: WebSocket;
    let connection: SocketConnection;
    let writes: number;
    const received: string[] = [];

    beforeEach(async () => {
      server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
      await once(server, 'listening');
      const accepted = once(server, 'connection') as Promise<[WebSocket, { socket: Socket }]>;
      client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
      client.on('message', (data) => received.push(String(data)));
      const [socket, request] = await accepted;
      await once(client, 'open');
      writes = 0;
      // Count what reaches the TCP socket's write methods (one per system call).
      type WriteMethod = (this: Socket, ...args: unknown[]) => void;
      const transport = request.socket as Socket & { _write: WriteMethod; _writev: WriteMethod };
      const [write, writev] = [transport._write, transport._writev];
      transport._write = function (...args: unknown[]) {
        writes++;
        return write.apply(this, args);
      };
      transport._writev = function (...args: unknown[]) {
        writes++;
        return writev.apply(this, args);
      };
      connection = new SocketConnection(socket, principal, 1 << 20, undefined, transport);
      received.length = 0;
    });
    afterEach(async () => {
      client.terminate();
      await new Promise((resolve) => server.close(resolve));
    });

    const arrived = async (count: number) => {
      while (received.length < count) await once(client, 'message');
      return received.map((text) => (JSON.parse(text) as { timestamp: string; type: string }).type);
    };

    it('writes the frames of one turn in one write, in order, and the next turn in another', async () => {
      connection.send({ kind: 'pong', at });
      connection.send({ kind: 'pong', sessionId: 's1', at });
      connection.send({ kind: 'pong', sessionId: 's2', at });
      expect(writes).toBe(0);
      expect(await arrived(3)).toEqual(['pong', 'pong', 'pong']);
      expect(writes).toBe(1);
      expect(received.map((text) => (JSON.parse(text) as { session_id?: string }).session_id)).toEqual([
        undefined,
        's1',
        's2',
      ]);

      connection.send({ kind: 'pong', sessionId: 's3', at });
      expect(await arrived(4)).toHaveLength(4);
      expect(writes).toBe(2);
    });

    it('still sends the frames of the turn a close happens in, then the close', async () => {
      connection.send({ kind: 'pong', sessionId: 'last', at });
      connection.close(1001, 'server_shutdown');
      const [code] = (await once(client, 'close')) as [number];
      expect(code).toBe(1001);
      expect(received.map((text) => (JSON.parse(text) as { session_id?: string }).session_id)).toEqual([
        'last',
      ]);
    });
  });
});
