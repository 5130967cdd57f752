// The smoke test of an installed package, run from a folder where the
// tarball is installed (scripts/test-package.js copies it there): an echo
// over loopback through require('acceptpool'), then the server's stats.
// Prints one JSON line: the Node version and arch, the addon file that
// loaded (relative to the package) and what the stats said.
//
//   node package-smoke.js
'use strict';

const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');

const acceptpool = require('acceptpool');

const MESSAGE = 'acceptpool smoke';

function echo(port) {
  return new Promise((resolve, reject) => {
    let reply = '';
    const socket = net.connect(port, '127.0.0.1', () => socket.write(MESSAGE));
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      reply += chunk;
      if (reply.length >= MESSAGE.length) socket.end();
    });
    socket.on('close', () => resolve(reply));
    socket.on('error', reject);
  });
}

async function main() {
  const server = acceptpool.createServer();
  server.on('data', (session, chunk) => session.send(chunk));
  const { port } = await server.listen(0, '127.0.0.1');
  assert.equal(await echo(port), MESSAGE);
  const stats = server.stats();
  await server.close();
  assert.equal(stats.accepts, 1);
  assert.equal(stats.bytesIn, MESSAGE.length);
  assert.equal(stats.bytesOut, MESSAGE.length);
  const packageRoot = path.dirname(require.resolve('acceptpool/package.json'));
  const addon = Object.keys(require.cache).find((file) => file.endsWith('.node'));
  console.log(JSON.stringify({
    node: process.version,
    arch: process.arch,
    addon: addon && path.relative(packageRoot, addon).split(path.sep).join('/'),
    backend: stats.backend,
    accepts: stats.accepts,
    bytesIn: stats.bytesIn,
  }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
