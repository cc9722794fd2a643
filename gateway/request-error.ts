import type { GatewayErrorCode, WireError } from '../shared/remote/protocol';

/** A refusal the gateway answers itself, with its HTTP status, wire code and headers. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: GatewayErrorCode | 'UNAUTHENTICATED' | 'PERMISSION_DENIED' | 'LIMIT_EXCEEDED',
    message: string,
    readonly headers: Record<string, string> = {},
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }

  toWire(): WireError {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** What the gateway counts; every part adds to the one object `stats()` reports. */
export interface GatewayCounters {
  requests: number;
  refused: number;
  slowConsumersDropped: number;
  deadSocketsDropped: number;
  subscriptionsRefused: number;
  keyLookupsSkipped: number;
  keyLookups: number;
  bodyTimeouts: number;
}

export function newCounters(): GatewayCounters {
  return {
    requests: 0,
    refused: 0,
    slowConsumersDropped: 0,
    deadSocketsDropped: 0,
    subscriptionsRefused: 0,
    keyLookupsSkipped: 0,
    keyLookups: 0,
    bodyTimeouts: 0,
  };
}
