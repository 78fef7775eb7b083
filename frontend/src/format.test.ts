import { describe, expect, it } from "vitest";
import { MaxExportRows } from "@taskwire/client";
import { capitalize, formatBytes, formatClock, formatCount, formatPercent, parseRows } from "./format";

describe("format", () => {
  it("writes sizes in SI units with two or three digits", () => {
    expect(formatBytes(0, "en-US")).toBe("0 B");
    expect(formatBytes(999, "en-US")).toBe("999 B");
    expect(formatBytes(1000, "en-US")).toBe("1.0 kB");
    expect(formatBytes(612_345, "en-US")).toBe("612 kB");
    expect(formatBytes(999_999, "en-US")).toBe("1.0 MB");
    expect(formatBytes(6_543_210, "en-US")).toBe("6.5 MB");
    expect(formatBytes(65_432_100, "en-US")).toBe("65 MB");
    expect(formatBytes(-1, "en-US")).toBe("");
  });

  it("writes durations as a clock", () => {
    expect(formatClock(0)).toBe("0:00");
    expect(formatClock(9.9)).toBe("0:09");
    expect(formatClock(65)).toBe("1:05");
    expect(formatClock(3723)).toBe("1:02:03");
    expect(formatClock(-3)).toBe("0:00");
  });

  it("never rounds up to 100% before the end", () => {
    expect(formatPercent(0)).toBe("0%");
    expect(formatPercent(0.42)).toBe("0.4%");
    expect(formatPercent(42.9)).toBe("42%");
    expect(formatPercent(99.99)).toBe("99%");
    expect(formatPercent(100)).toBe("100%");
  });

  it("groups counts", () => {
    expect(formatCount(1_000_000, "en-US")).toBe("1,000,000");
    expect(capitalize("writing")).toBe("Writing");
  });
});

describe("parseRows", () => {
  it("reads what people type", () => {
    for (const [input, rows] of [
      ["250000", 250_000],
      [" 250,000 ", 250_000],
      ["250 000", 250_000],
      ["250k", 250_000],
      ["1.5k", 1_500],
      ["1M", 1_000_000],
      ["1", 1],
    ] as const) {
      expect(parseRows(input), input).toEqual({ ok: true, rows });
    }
  });

  it("refuses what the server would refuse, with the contract's bounds", () => {
    for (const input of ["", "0", "-5", "abc", "1.5", "1000001", "2m", "1e6", "0.0001k"]) {
      const r = parseRows(input);
      expect(r.ok, input).toBe(false);
      if (!r.ok) expect(r.message).toBe(`Enter a whole number from 1 to ${formatCount(MaxExportRows, "en-US")}.`);
    }
  });
});
