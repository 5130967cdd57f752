/**
 * Helpers for the embedding tests: node:http (and https, ws) servers run on
 * acceptpool through server.handoff(), and raw HTTP over node:net clients.
 * Everything made here is closed by the suite's cleanup().
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as crypto from 'node:crypto';
import type * as http from 'node:http';
import type * as http2 from 'node:http2';
import type * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as tls from 'node:tls';

import type { Driver, Server, ServerOptions, SessionSocket } from '../src/index';
import { HOST4, startServer, waitFor, withTimeout } from './helpers';
import type { Harness } from './helpers';

export interface Handoff<T> {
  /** The acceptpool server's harness (sessions, closes). */
  h: Harness;
  server: Server;
  target: T;
  port: number;
  /** Every socket handed to the target, in order. */
  sockets: SessionSocket[];
}

/** An acceptpool server on loopback handing its sessions to `target`. */
export async function startHandoff<T extends http.Server | net.Server | tls.Server | http2.Http2Server>(
  driver: Driver,
  target: T,
  options: ServerOptions = {},
): Promise<Handoff<T>> {
  const sockets: SessionSocket[] = [];
  target.on('connection', (socket: unknown) => sockets.push(socket as SessionSocket));
  const h = await startServer(driver, options, { record: false, beforeListen: (server) => server.handoff(target) });
  return { h, server: h.server, target, port: h.port, sockets };
}

export interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request with `lib` (http or https); `body` writes and ends the request (default: end()). */
export function request(
  lib: typeof http | typeof https,
  port: number,
  options: https.RequestOptions,
  body?: (req: http.ClientRequest) => void,
): Promise<Got> {
  return withTimeout(
    new Promise<Got>((resolve, reject) => {
      const req = lib.request({ host: HOST4, port, ...options }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      if (body !== undefined) body(req);
      else req.end();
    }),
    20_000,
    `${options.method ?? 'GET'} ${options.path ?? '/'}`,
  );
}

export const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

/** One parsed HTTP/1.1 response. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Reads whole HTTP/1.1 responses from `bytes` (Content-Length or chunked
 * bodies); returns those complete and how many bytes they took.
 */
export function parseResponses(bytes: Buffer): { responses: RawResponse[]; used: number } {
  const responses: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const headEnd = bytes.indexOf('\r\n\r\n', at);
    if (headEnd < 0) break;
    const lines = bytes.subarray(at, headEnd).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])?.[1]);
    assert.ok(Number.isInteger(status), `a status line: ${lines[0]}`);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let p = headEnd + 4;
    let body: Buffer;
    if (headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = bytes.indexOf('\r\n', p);
        if (lineEnd < 0) return { responses, used: at };
        const size = parseInt(bytes.subarray(p, lineEnd).toString('latin1'), 16);
        if (bytes.length < lineEnd + 2 + size + 2) return { responses, used: at };
        parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
        p = lineEnd + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (bytes.length < p + length) break;
      body = bytes.subarray(p, p + length);
      p += length;
    }
    responses.push({ status, headers, body });
    at = p;
  }
  return { responses, used: at };
}

/** A raw client socket with everything it received, for hand-written HTTP. */
export class RawClient {
  private chunks: Buffer[] = [];
  ended = false;
  closed = false;
  error: Error | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => this.chunks.push(c));
    socket.on('end', () => {
      this.ended = true;
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', (err) => {
      this.error = err;
    });
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = net.connect({ port, host: HOST4 });
    const client = new RawClient(socket);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      }),
      5_000,
      'raw client connect',
    );
    clients.add(client);
    return client;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Waits for `n` complete responses. */
  async responses(n: number, timeoutMs = 10_000): Promise<RawResponse[]> {
    await waitFor(() => parseResponses(this.bytes()).responses.length >= n || this.closed, timeoutMs, `${n} responses`);
    const { responses } = parseResponses(this.bytes());
    assert.ok(responses.length >= n, `${responses.length} of ${n} responses before the connection closed`);
    return responses;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const clients = new Set<RawClient>();

/** Destroys every raw client (call from afterEach, before cleanup()). */
export function destroyRawClients(): void {
  for (const c of clients) c.destroy();
  clients.clear();
}

export interface TestCertificates {
  /** The CA's certificate (PEM): what a client trusts. */
  ca: string;
  /** The server's key and its certificate, signed by the CA, for 127.0.0.1 and localhost. */
  key: string;
  cert: string;
}

let certificates: TestCertificates | null = null;

/**
 * Whether the system's openssl runs here: it makes the test certificates.
 * Under Wine (npm run test:win) node.exe finds none, so the TLS tests run
 * on Linux only.
 */
export function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A throw-away CA and a server certificate it signed, made with the
 * system's openssl (P-256 keys, valid for a day) once per test run.
 */
export function testCertificates(): TestCertificates {
  if (certificates !== null) return certificates;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acceptpool-tls-'));
  try {
    const ssl = (...args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    };
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    ssl(
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '1',
      '-subj',
      '/CN=acceptpool test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    );
    ssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    fs.writeFileSync(
      path.join(dir, 'server.ext'),
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
    );
    ssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '1',
      '-extfile',
      'server.ext',
    );
    const read = (name: string): string => fs.readFileSync(path.join(dir, name), 'utf8');
    certificates = { ca: read('ca.crt'), key: read('server.key'), cert: read('server.crt') };
    return certificates;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
