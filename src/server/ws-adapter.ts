import type { IncomingMessage } from 'node:http';
import { CloseCode, handleProtocols, makeServer, type ServerOptions } from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';

/** What graphql-ws's operations see as `ctx.extra` (as `graphql-ws/use/ws` gives it). */
export interface WsExtra {
  readonly socket: WebSocket;
  readonly request: IncomingMessage;
}

const KEEP_ALIVE_MS = 12_000;

/**
 * `graphql-ws/use/ws`'s `useServer`, with one difference: its message listener is an
 * async function that awaits graphql-ws's handler, and for a subscribe message that
 * handler runs as long as the subscription, so every idle subscription kept its raw
 * message Buffer (a view of the socket's read chunk) alive. Here the listener converts
 * the message to text and returns at once (issue 19: idle subscription memory).
 * Ping/pong keep-alive, protocol negotiation and error handling are as in `useServer`.
 */
export function serveGraphqlWs<E extends Record<PropertyKey, unknown> = Record<PropertyKey, never>>(
  options: ServerOptions<Record<string, unknown> | undefined, WsExtra & Partial<E>>,
  wss: WebSocketServer,
): { dispose(): Promise<void> } {
  const server = makeServer(options);
  wss.options.handleProtocols = handleProtocols;
  wss.once('error', (error) => {
    for (const client of wss.clients) client.close(CloseCode.InternalServerError, 'Internal server error');
    console.error('Internal error emitted on the WebSocket server', error);
  });
  wss.on('connection', (socket, request) => {
    socket.once('error', (error) => {
      console.error('Internal error emitted on a WebSocket socket', error);
      socket.close(CloseCode.InternalServerError, 'Internal server error');
    });
    let pongWait: NodeJS.Timeout | null = null;
    const pingInterval = setInterval(() => {
      if (socket.readyState !== socket.OPEN) return;
      pongWait = setTimeout(() => socket.terminate(), KEEP_ALIVE_MS);
      socket.once('pong', () => {
        if (pongWait) clearTimeout(pongWait);
        pongWait = null;
      });
      socket.ping();
    }, KEEP_ALIVE_MS);
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (error) => (error ? reject(error) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on('message', (event) => {
            // Not awaited here: the handler outlives the message for as long as a subscription streams.
            handle(String(event)).catch((error: unknown) => {
              console.error('Internal error occurred during graphql-ws message handling', error);
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            });
          }),
      },
      { socket, request } as WsExtra & Partial<E>,
    );
    socket.once('close', (code, reason) => {
      if (pongWait) clearTimeout(pongWait);
      clearInterval(pingInterval);
      void closed(code, String(reason));
    });
  });
  return {
    async dispose() {
      for (const client of wss.clients) client.close(1001, 'Going away');
      wss.removeAllListeners();
      await new Promise<void>((resolve, reject) => wss.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
