/**
 * The wire format's values, read from the addon (native/core/wire.h defines
 * each of them once; nothing here copies one), and the one decoder of the
 * error word. Hot paths read what they need into module-level constants of
 * their own at load (src/endpoint.ts).
 */
import { binding } from './native';
import type { NativeWire } from './native';

export const wire: NativeWire = binding.wire;

export const CloseMode = wire.CloseMode;
export const SessionControl = wire.SessionControl;
export const Code = wire.Code;
export const ConnectStep = wire.ConnectStep;

/** A session id is generation * 2^slotBits + slot: the most slots. */
export const MAX_SLOTS = 2 ** wire.slotBits;

/** The error a record carries (kClose, kConnectFailed) or connect() returns. */
export interface RecordError {
  /** A Code value: Code.System for an OS error (sys, raw), another for a library failure. */
  code: number;
  /** A SysError value: an index into wire.errorNames. */
  sys: number;
  /** The OS's own number (errno, WSA code), signed. */
  raw: number;
  /** A ConnectStep value. */
  step: number;
}

const { sys: SYS, raw: RAW, code: CODE, step: STEP } = wire.errorWord;

function field(word: number, f: { shift: number; bits: number }): number {
  return Math.floor(word / 2 ** f.shift) % 2 ** f.bits;
}

/**
 * The one decoder of the error word (its rule: native/core/event_batch.h,
 * ACCEPTPOOL_ERROR_WORD). 0 is no error.
 */
export function decodeErrorWord(word: number): RecordError {
  return {
    code: field(word, CODE),
    sys: field(word, SYS),
    // The OS number's 32 bits, two's complement.
    raw: field(word, RAW) | 0,
    step: field(word, STEP),
  };
}

/** The Node-style name of a SysError value. */
export function errorName(sys: number): string {
  return wire.errorNames[sys] ?? 'EUNKNOWN';
}
