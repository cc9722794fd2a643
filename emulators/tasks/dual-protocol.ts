import type { Socket } from 'node:net';

/** What every HTTP/2 client sends first (RFC 9113 §3.4); no HTTP/1.1 request line starts like it. */
const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/**
 * Reads the first bytes of a connection, puts them back, and hands the socket to `http2`
 * (gRPC) when they are the HTTP/2 connection preface, else to `http1` (REST). One port then
 * serves both, as the service's endpoint does.
 */
export function routeByPreface(
  socket: Socket,
  handlers: { http2(socket: Socket): void; http1(socket: Socket): void },
): void {
  let received = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    const compared = Math.min(received.length, HTTP2_PREFACE.length);
    const isHttp2 = received.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared));
    if (isHttp2 && compared < HTTP2_PREFACE.length) return; // could still be either: wait for more
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.pause();
    socket.unshift(received);
    (isHttp2 ? handlers.http2 : handlers.http1)(socket);
  };
  const onEnd = () => socket.destroy();
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.on('error', () => socket.destroy());
}
