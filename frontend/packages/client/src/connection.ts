// The connection indicator's model: a pure reducer over what socket.io-client and
// the browser report, so the indicator says only what is known.
//
// - connected: the Socket.IO namespace handshake completed (socket "connect"), and
//   no disconnect has been seen since.
// - reconnecting: we were connected (or are trying to be) and the client is retrying.
// - offline: the browser says it has no network, or the client gave up.
// - connecting: the first attempt has not succeeded yet.

/** ConnStatus is what the indicator shows. */
export type ConnStatus = "connecting" | "connected" | "reconnecting" | "offline";

/** ConnState is everything the indicator is derived from. */
export interface ConnState {
  browserOnline: boolean;
  socketConnected: boolean;
  /** The client is retrying (or will retry) on its own. */
  retrying: boolean;
  /** The client stopped retrying (reconnect_failed, or refused and not yet restarted). */
  gaveUp: boolean;
  everConnected: boolean;
  /** Number of the current reconnection attempt (0 when none). */
  attempt: number;
  /** Last error reported by the client, for the tooltip. */
  lastError: string | undefined;
}

/** ConnEvent is one thing socket.io-client or the browser reported. */
export type ConnEvent =
  | { type: "connect" } // socket: namespace connected
  | { type: "disconnect"; reason: string; willRetry: boolean } // socket
  | { type: "connect_error"; message: string; willRetry: boolean } // socket
  | { type: "reconnect_attempt"; attempt: number } // manager
  | { type: "reconnect_error"; message: string } // manager
  | { type: "reconnect_failed" } // manager
  | { type: "manual_retry" } // the app called connect() again
  | { type: "online" } // window
  | { type: "offline" }; // window

/** initialConn is the state before anything happened. */
export function initialConn(browserOnline: boolean): ConnState {
  return {
    browserOnline,
    socketConnected: false,
    retrying: true,
    gaveUp: false,
    everConnected: false,
    attempt: 0,
    lastError: undefined,
  };
}

/** reduceConn returns the state after e. */
export function reduceConn(s: ConnState, e: ConnEvent): ConnState {
  switch (e.type) {
    case "connect":
      return { ...s, socketConnected: true, everConnected: true, retrying: false, gaveUp: false, attempt: 0, lastError: undefined };
    case "disconnect":
      return { ...s, socketConnected: false, retrying: e.willRetry, gaveUp: !e.willRetry, lastError: e.reason };
    case "connect_error":
      return { ...s, socketConnected: false, retrying: e.willRetry, gaveUp: !e.willRetry, lastError: e.message };
    case "reconnect_attempt":
      return { ...s, socketConnected: false, retrying: true, gaveUp: false, attempt: e.attempt };
    case "reconnect_error":
      return { ...s, lastError: e.message };
    case "reconnect_failed":
      return { ...s, socketConnected: false, retrying: false, gaveUp: true };
    case "manual_retry":
      return { ...s, retrying: true, gaveUp: false };
    case "online":
      return { ...s, browserOnline: true };
    case "offline":
      return { ...s, browserOnline: false };
  }
}

/** connStatus derives what the indicator shows. */
export function connStatus(s: ConnState): ConnStatus {
  if (!s.browserOnline) return "offline";
  if (s.socketConnected) return "connected";
  if (s.gaveUp) return "offline";
  return s.everConnected ? "reconnecting" : "connecting";
}

/** connLabel is the indicator's text. */
export function connLabel(s: ConnState): string {
  switch (connStatus(s)) {
    case "connected":
      return "Connected";
    case "connecting":
      return "Connecting…";
    case "reconnecting":
      // The attempt count goes in connTitle: this text is a live region, and a
      // new announcement per attempt would be noise.
      return "Reconnecting…";
    case "offline":
      return s.browserOnline ? "Offline: server unreachable" : "Offline";
  }
}

/** connTitle is the indicator's tooltip: the details behind the label. */
export function connTitle(s: ConnState): string | undefined {
  const status = connStatus(s);
  if (status === "connected") return "Live updates are on.";
  const parts: string[] = [];
  if (status === "reconnecting" && s.attempt > 0) parts.push(`Attempt ${s.attempt}.`);
  if (s.lastError) parts.push(`Last error: ${s.lastError}.`);
  return parts.length > 0 ? parts.join(" ") : undefined;
}
