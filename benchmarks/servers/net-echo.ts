// node:net echo server for the benchmarks: the baseline every result is a ratio of.
// Usage: node net-echo.js [--port=0] [--backlog=1024]
import * as net from 'node:net';

import { announceListening, parseServerArgs, serveControl } from './control';

const args = parseServerArgs(process.argv.slice(2));
let conns = 0;
let accepted = 0;

const server = net.createServer({ noDelay: true }, (socket) => {
  conns++;
  accepted++;
  socket.on('data', (data) => socket.write(data));
  // Storm clients close with RST (SO_LINGER 0): ECONNRESET is an ordinary close here.
  socket.on('error', () => undefined);
  socket.on('close', () => {
    conns--;
  });
});
server.on('error', (err) => {
  process.stderr.write(`net-echo: ${err.message}\n`);
  process.exit(1);
});
server.maxConnections = 1 << 30;

server.listen({ port: args.port, host: '127.0.0.1', backlog: args.backlog }, () => {
  const addr = server.address();
  const port = addr !== null && typeof addr === 'object' ? addr.port : 0;
  announceListening(port, '127.0.0.1', { kind: 'net' });
});

serveControl({
  counts: () => ({ conns, accepted }),
  shutdown: () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      // close() waits for open sockets; the runner stops us after clients are gone
      setTimeout(resolve, 200).unref();
    }),
});
