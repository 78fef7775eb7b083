import { afterEach, describe, expect, it, vi } from "vitest";
import { Api, ApiError, skewFromDate } from "./api.js";

type Call = { url: string; init: RequestInit | undefined };

function fakeFetch(responses: Response[]): { calls: Call[]; fetch: typeof fetch } {
  const calls: Call[] = [];
  return {
    calls,
    fetch: (async (url: string, init?: RequestInit) => {
      calls.push({ url, init });
      const r = responses.shift();
      if (!r) throw new TypeError("Failed to fetch");
      return r;
    }) as typeof fetch,
  };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

afterEach(() => vi.unstubAllGlobals());

describe("Api", () => {
  it("posts an export with the socket id and returns the 202 body", async () => {
    const f = fakeFetch([json(202, { id: "abc", state: "queued" })]);
    vi.stubGlobal("fetch", f.fetch);
    const created = await new Api().createExport(10_000, "sock-1");
    expect(created).toEqual({ id: "abc", state: "queued" });
    expect(f.calls[0]?.url).toBe("/api/v1/tasks");
    expect(f.calls[0]?.init?.method).toBe("POST");
    expect(JSON.parse(String(f.calls[0]?.init?.body))).toEqual({ kind: "export", params: { rows: 10_000 }, socketId: "sock-1" });
  });

  it("turns the server's error body into an ApiError with its code", async () => {
    vi.stubGlobal("fetch", fakeFetch([json(400, { error: { code: "invalid_params", message: "params.rows: must be between 1 and 1000000, got 0" } })]).fetch);
    const err = await new Api().createExport(0, undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 400, code: "invalid_params", message: "params.rows: must be between 1 and 1000000, got 0" });
  });

  it("renews the session once on 401 and repeats the request", async () => {
    const f = fakeFetch([
      json(401, { error: { code: "unauthorized", message: "invalid session token" } }),
      json(200, { token: "t" }),
      json(200, { tasks: [] }),
    ]);
    vi.stubGlobal("fetch", f.fetch);
    expect(await new Api().listTasks()).toEqual([]);
    expect(f.calls.map((c) => c.url)).toEqual(["/api/v1/tasks", "/api/v1/session", "/api/v1/tasks"]);
  });

  it("reports an unreachable server as a network error", async () => {
    vi.stubGlobal("fetch", fakeFetch([]).fetch);
    await expect(new Api().listTasks()).rejects.toMatchObject({ status: 0, code: "network" });
  });

  it("reads a non-JSON error answer", async () => {
    vi.stubGlobal("fetch", fakeFetch([new Response("bad gateway", { status: 502, statusText: "Bad Gateway" })]).fetch);
    await expect(new Api().getTask("x")).rejects.toMatchObject({ status: 502, code: "http_502", message: "The server answered 502 Bad Gateway." });
  });

  it("estimates the server's clock skew from the Date header", async () => {
    const now = Date.parse("2026-01-02T10:00:00.000Z");
    expect(skewFromDate("Fri, 02 Jan 2026 10:00:00 GMT", now)).toBe(0);
    expect(skewFromDate("Fri, 02 Jan 2026 10:00:30 GMT", now)).toBe(30_500);
    expect(skewFromDate("nonsense", now)).toBeUndefined();
    expect(skewFromDate(null, now)).toBeUndefined();
  });

  it("keeps every detail of an invalid_params answer", async () => {
    const body = {
      error: {
        code: "invalid_params",
        message: "2 problems",
        details: [{ field: "params.countries", message: "maximum: got 99, want 50" }, { field: "params.title" }, "junk"],
      },
    };
    vi.stubGlobal("fetch", fakeFetch([json(400, body)]).fetch);
    const err = await new Api().createTask("report", { countries: 99 }, undefined).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "invalid_params", details: [{ field: "params.countries", message: "maximum: got 99, want 50" }] });
  });

  it("lists kinds, and stands in the export kind for a server without the endpoint", async () => {
    const kinds = [{ name: "train", title: "Model training", paramsSchema: { type: "object" }, workers: 0 }];
    vi.stubGlobal("fetch", fakeFetch([json(200, { kinds }), json(404, { error: { code: "not_found", message: "no" } })]).fetch);
    const api = new Api();
    expect(await api.listKinds()).toEqual(kinds);
    const legacy = await api.listKinds();
    expect(legacy.map((k) => k.name)).toEqual(["export"]);
  });

  it("fetches a stream from an index", async () => {
    const f = fakeFetch([json(200, { stream: "metrics", from: 5, count: 7, items: [1, 2] })]);
    vi.stubGlobal("fetch", f.fetch);
    expect(await new Api().getStream("t/1", "metrics", 5)).toEqual({ stream: "metrics", from: 5, count: 7, items: [1, 2] });
    expect(f.calls[0]?.url).toBe("/api/v1/tasks/t%2F1/streams/metrics?from=5");
  });
});
