/**
 * PROXY protocol records as the native side writes them (native/core/proxy_protocol.h):
 * a proxied session's header, and a refused connection's peer and reason.
 * Native code parsed and checked the header; this only reads its layout.
 */
import { formatIPv4, formatIPv6 } from './address';
import { ProxyHeaderError } from './errors';
import type { ProxyEndpoint, ProxyInfo, ProxyTlv } from './types';
import { wire } from './wire';

const ADDRESS = wire.address;
const HEAD = wire.proxyHead;
const REJECT = wire.proxyReject;
const UNIX_PATH = wire.proxyUnixPathBytes;

/** The address and port of a 24-byte SocketAddress at `at`. */
function endpoint(bytes: Buffer, at: number): ProxyEndpoint {
  const port = bytes.readUInt16LE(at + ADDRESS.port);
  const address =
    bytes[at + ADDRESS.family] === 6 ? formatIPv6(bytes, at + ADDRESS.addr) : formatIPv4(bytes.readUInt32BE(at + ADDRESS.addr));
  return { address, port };
}

/** An AF_UNIX path field: up to its first NUL. */
function unixPath(bytes: Buffer, at: number): ProxyEndpoint {
  const field = bytes.subarray(at, at + UNIX_PATH);
  const nul = field.indexOf(0);
  return { address: field.toString('utf8', 0, nul < 0 ? field.length : nul), port: 0 };
}

/**
 * @internal What a kSession record's data says past its remote address
 * (`length` bytes at `at`), or null for a session without a PROXY header.
 * TLV values are copies: a session may outlive the batch's memory by far.
 */
export function decodeProxy(bytes: Buffer, at: number, length: number): ProxyInfo | null {
  if (length <= ADDRESS.size) return null;
  const h = at + ADDRESS.size;
  const family = wire.proxyFamilies[bytes[h + HEAD.family]] ?? 'unspec';
  const unixBytes = bytes.readUInt16LE(h + HEAD.unix_bytes);
  const tlvBytes = bytes.readUInt16LE(h + HEAD.tlv_bytes);
  const rest = h + HEAD.size;
  let source: ProxyEndpoint | null = null;
  let destination: ProxyEndpoint | null = null;
  if (family === 'IPv4' || family === 'IPv6') {
    source = endpoint(bytes, h + HEAD.source);
    destination = endpoint(bytes, h + HEAD.destination);
  } else if (family === 'unix') {
    source = unixPath(bytes, rest);
    destination = unixPath(bytes, rest + UNIX_PATH);
  }
  const tlvs: ProxyTlv[] = [];
  const end = rest + unixBytes + tlvBytes;
  for (let t = rest + unixBytes; t + 3 <= end;) {
    const size = bytes.readUInt16BE(t + 1);
    tlvs.push({ type: bytes[t], value: Buffer.from(bytes.subarray(t + 3, t + 3 + size)) });
    t += 3 + size;
  }
  return {
    version: bytes[h + HEAD.version] === 1 ? 1 : 2,
    command: wire.proxyCommands[bytes[h + HEAD.command]] ?? 'proxy',
    family,
    transport: wire.proxyTransports[bytes[h + HEAD.transport]] ?? 'unspec',
    source,
    destination,
    tlvs,
  };
}

/** @internal The error a kProxyRejected record's data (at `at`) describes. */
export function proxyRejection(bytes: Buffer, at: number): ProxyHeaderError {
  const peer = endpoint(bytes, at);
  const info = at + ADDRESS.size;
  const reason = wire.proxyRejects[bytes[info + REJECT.reason]] ?? 'malformed';
  const detail = wire.proxyErrors[bytes[info + REJECT.error]] ?? 'unknown error';
  return new ProxyHeaderError(reason, detail, peer.address, peer.port);
}
