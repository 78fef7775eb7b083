import { describe, expect, it } from "vitest";
import { connLabel, connStatus, connTitle, initialConn, reduceConn, type ConnEvent, type ConnState } from "./connection.js";

function run(events: ConnEvent[], online = true): ConnState {
  return events.reduce(reduceConn, initialConn(online));
}

describe("connection indicator", () => {
  it("says connecting until the first connect, not reconnecting", () => {
    expect(connStatus(run([]))).toBe("connecting");
    expect(connStatus(run([{ type: "connect_error", message: "xhr poll error", willRetry: true }]))).toBe("connecting");
    expect(connStatus(run([{ type: "connect" }]))).toBe("connected");
  });

  it("goes to reconnecting as soon as the connection drops, before the first retry", () => {
    const s = run([{ type: "connect" }, { type: "disconnect", reason: "transport close", willRetry: true }]);
    expect(connStatus(s)).toBe("reconnecting");
    expect(connLabel(s)).toBe("Reconnecting…");
  });

  it("counts attempts and clears them on reconnect", () => {
    const s = run([
      { type: "connect" },
      { type: "disconnect", reason: "transport close", willRetry: true },
      { type: "reconnect_attempt", attempt: 1 },
      { type: "reconnect_error", message: "xhr poll error" },
      { type: "reconnect_attempt", attempt: 2 },
    ]);
    expect(connLabel(s)).toBe("Reconnecting…");
    expect(connTitle(s)).toBe("Attempt 2. Last error: xhr poll error.");
    const back = reduceConn(s, { type: "connect" });
    expect(connStatus(back)).toBe("connected");
    expect(back.attempt).toBe(0);
    expect(back.lastError).toBeUndefined();
  });

  it("never claims connected while the browser is offline", () => {
    const s = run([{ type: "connect" }, { type: "offline" }]);
    expect(connStatus(s)).toBe("offline");
    expect(connLabel(s)).toBe("Offline");
    expect(connStatus(reduceConn(s, { type: "online" }))).toBe("connected");
    expect(connStatus(run([], false))).toBe("offline");
  });

  it("says offline when the client stopped retrying, and reconnecting when the app retries", () => {
    const gaveUp = run([{ type: "connect" }, { type: "disconnect", reason: "transport close", willRetry: true }, { type: "reconnect_failed" }]);
    expect(connStatus(gaveUp)).toBe("offline");
    expect(connLabel(gaveUp)).toBe("Offline: server unreachable");
    expect(connStatus(reduceConn(gaveUp, { type: "manual_retry" }))).toBe("reconnecting");
    const refused = run([{ type: "connect" }, { type: "disconnect", reason: "io client disconnect", willRetry: false }]);
    expect(connStatus(refused)).toBe("offline");
  });
});
