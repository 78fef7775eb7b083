import { describe, expect, it } from "vitest";
import { refreshBeforeMs, tokenExpiry, Tokens } from "./auth.js";
import { jwt } from "./testing/fake.js";

describe("tokenExpiry", () => {
  it("reads a JWT's exp without verifying it", () => {
    expect(tokenExpiry(jwt("u-42", 1_900_000_000))).toBe(1_900_000_000_000);
  });

  it("says nothing of tokens that are not JWTs or have no exp", () => {
    expect(tokenExpiry("v1.abc.def")).toBeUndefined(); // an anonymous session token
    expect(tokenExpiry("opaque-viewer-token")).toBeUndefined();
    const noExp = `${btoa("{}")}.${btoa(JSON.stringify({ sub: "u" }))}.x`;
    expect(tokenExpiry(noExp)).toBeUndefined();
  });
});

describe("Tokens", () => {
  it("keeps a token until it is due, then asks the function again (once for concurrent callers)", async () => {
    let now = 1_000_000_000_000;
    let calls = 0;
    const exp = Math.floor(now / 1000) + 120;
    const tokens = new Tokens(async () => jwt("u-1", exp, String(++calls)), () => now);
    const a = await tokens.get();
    expect(await tokens.get()).toBe(a);
    expect(calls).toBe(1);
    now = exp * 1000 - refreshBeforeMs + 1;
    const [b, c] = await Promise.all([tokens.get(), tokens.get()]);
    expect(b).not.toBe(a);
    expect(c).toBe(b);
    expect(calls).toBe(2);
  });

  it("uses a fixed token as is, whatever happens", async () => {
    const tokens = new Tokens("fixed");
    expect(tokens.refreshable).toBe(false);
    tokens.invalidate();
    expect(await tokens.fresh()).toBe("fixed");
  });

  it("refuses an empty token from the function", async () => {
    const tokens = new Tokens(async () => "");
    await expect(tokens.get()).rejects.toThrow(/no token/);
  });
});
