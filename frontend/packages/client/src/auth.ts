// Tokens: where the client's identity comes from, and when it must be renewed.
//
// A token is an app's JWT, a viewer token, or an anonymous session token; the
// client only passes it (Authorization: Bearer on HTTP, auth.token in the
// Socket.IO handshake). A JWT's exp is read from its payload, without verifying
// it, to renew it before the server stops accepting it.

/** TokenSource is a fixed token or a function that fetches a fresh one. */
export type TokenSource = string | (() => Promise<string>);

/** How long before its exp a token is renewed. */
export const refreshBeforeMs = 30_000;

function base64UrlDecode(s: string): string {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(s.length / 4) * 4, "=");
  const bin = atob(b64);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/**
 * tokenExpiry returns a JWT's exp as a time in ms, or undefined when the token is
 * not a JWT or says no exp (anonymous session tokens, opaque viewer tokens).
 */
export function tokenExpiry(token: string): number | undefined {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const payload: unknown = JSON.parse(base64UrlDecode(parts[1]));
    const exp = (payload as { exp?: unknown } | null)?.exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** The JWT header "typ" of the viewer tokens taskwire signs. */
export const viewerTokenType = "taskwire-viewer+jwt";

/**
 * isViewerToken reports whether token is a viewer token (read-only, one task):
 * a JWT whose header says typ taskwire-viewer+jwt. Its identity owns no task, so
 * the server refuses its delivery receipts and it has no inbox.
 */
export function isViewerToken(token: string): boolean {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts[0]) return false;
  try {
    const header: unknown = JSON.parse(base64UrlDecode(parts[0]));
    return (header as { typ?: unknown } | null)?.typ === viewerTokenType;
  } catch {
    return false;
  }
}

/** Tokens hands out the current token and fetches a new one when it is due. */
export class Tokens {
  private current: string | undefined;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly source: TokenSource,
    private readonly now: () => number = Date.now,
  ) {
    if (typeof source === "string") this.current = source;
  }

  /** refreshable reports whether a new token can be asked for. */
  get refreshable(): boolean {
    return typeof this.source === "function";
  }

  /** expiresAt is the current token's exp in ms, if it has one. */
  get expiresAt(): number | undefined {
    return this.current !== undefined ? tokenExpiry(this.current) : undefined;
  }

  /** viewer reports whether the current token is a viewer token (isViewerToken). */
  get viewer(): boolean {
    return this.current !== undefined && isViewerToken(this.current);
  }

  /** get returns the current token, fetching one when there is none or it is about to expire. */
  get(): Promise<string> {
    const cur = this.current;
    if (cur !== undefined) {
      const exp = tokenExpiry(cur);
      if (!this.refreshable || exp === undefined || exp - this.now() > refreshBeforeMs) return Promise.resolve(cur);
    }
    return this.fetch();
  }

  /** fresh fetches a new token whatever the current one (a fixed token is returned as is). */
  fresh(): Promise<string> {
    return this.fetch();
  }

  /** invalidate forgets the current token (the server refused it). */
  invalidate(): void {
    if (this.refreshable) this.current = undefined;
  }

  private fetch(): Promise<string> {
    const source = this.source;
    if (typeof source === "string") return Promise.resolve(source);
    this.pending ??= source()
      .then((t) => {
        if (typeof t !== "string" || t === "") throw new Error("taskwire: the token function returned no token");
        this.current = t;
        return t;
      })
      .finally(() => (this.pending = undefined));
    return this.pending;
  }
}

/** Events of the token contract (not in the generated contract yet). */
export const AuthEvents = {
  /** The server says the socket's token expired: refresh within the grace period or be disconnected. */
  TokenExpired: "task:token_expired",
  /** The client sends a fresh token for its socket: payload {token}, ack RefreshAck. */
  Refresh: "auth:refresh",
} as const;

/** RefreshAck is the server's answer to auth:refresh. */
export type RefreshAck = { ok: true; expiresAt?: string } | { ok?: false; error: { code: string; message?: string } };
