// ferry-sync's errors and the two ways the entry calls into the engine: every error is a
// `FerryError` with a machine-readable `code`, every Promise-returning method rejects
// instead of throwing.
import { RUST_ERROR_CODES } from './error-codes.js';

/** Every `code` a FerryError can have: the engine's (generated from the Rust sources) and this layer's. */
export const FERRY_ERROR_CODES = Object.freeze([...RUST_ERROR_CODES, 'wasm_load_failed', 'unsupported_environment']);
const KNOWN_CODES = new Set(FERRY_ERROR_CODES);

/** Every error Ferry throws or rejects with: an `Error` with a machine-readable `code`. */
export class FerryError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = 'FerryError';
    this.code = code;
  }

  // The engine's errors are made in Rust (plain `Error`s with a code) and reach apps through
  // objects this layer does not wrap (conflict.resolve(), deadLetter.retry()); `instanceof`
  // recognises them by their code so one check works for every error Ferry makes.
  static [Symbol.hasInstance](value) {
    return value instanceof Error && KNOWN_CODES.has(value.code);
  }
}

/** Whether `value` is a FerryError (with `code`, when given). */
export function isFerryError(value, code) {
  return value instanceof FerryError && (code === undefined || value.code === code);
}

/** An engine error as a FerryError (same object: stack and message kept). */
export function asFerryError(error) {
  if (error instanceof FerryError && Object.getPrototypeOf(error) === Error.prototype) {
    Object.setPrototypeOf(error, FerryError.prototype);
    error.name = 'FerryError';
  }
  return error;
}

/**
 * Runs a Promise-returning engine call: a failure it throws becomes a rejection. The
 * engine's own promise is returned as it is (no extra promise per write: writes are the hot
 * path); its rejections are coded engine errors, which `instanceof FerryError` recognises.
 */
export function rejecting(call) {
  try {
    return call();
  } catch (e) {
    return Promise.reject(asFerryError(e));
  }
}

/** Runs a synchronous engine call, rethrowing its error as a FerryError. */
export function throwing(call) {
  try {
    return call();
  } catch (e) {
    throw asFerryError(e);
  }
}
