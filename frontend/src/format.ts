// Formatting and parsing of what people read and type. Pure.

import { MaxExportRows, MinExportRows } from "@taskwire/client";

/** formatCount writes an integer with the locale's grouping (100,000). */
export function formatCount(n: number, locale?: string): string {
  return new Intl.NumberFormat(locale, { maximumFractionDigits: 0 }).format(n);
}

/** formatBytes writes a size in SI units (1 kB = 1000 B), two or three digits. */
export function formatBytes(n: number, locale?: string): string {
  if (!Number.isFinite(n) || n < 0) return "";
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n;
  let i = -1;
  do {
    v /= 1000;
    i++;
  } while (v >= 999.5 && i < units.length - 1);
  const digits = v < 10 ? 1 : 0;
  return `${new Intl.NumberFormat(locale, { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(v)} ${units[i]}`;
}

/** formatClock writes a duration in seconds as m:ss or h:mm:ss. */
export function formatClock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * shownPercent is the number a progress label and its bar's fill both show, without
 * misleading precision: 0, 0.4, 12, 99, 100 (never 100 before the task is done).
 */
export function shownPercent(p: number): number {
  if (!Number.isFinite(p) || p <= 0) return 0;
  if (p >= 100) return 100;
  if (p < 1) return Math.max(0.1, Math.floor(p * 10) / 10);
  return Math.min(99, Math.floor(p));
}

/** formatPercent writes shownPercent: "0.4%", "12%", "100%". */
export function formatPercent(p: number): string {
  return `${shownPercent(p)}%`;
}

/** RowsResult is the outcome of parsing the custom row count. */
export type RowsResult = { ok: true; rows: number } | { ok: false; message: string };

/**
 * parseRows reads a row count as people type it: 250000, 250,000, 250 000, 250k,
 * 1.5M. It enforces the bounds of the Go contract.
 */
export function parseRows(input: string): RowsResult {
  const bounds = `Enter a whole number from ${formatCount(MinExportRows, "en-US")} to ${formatCount(MaxExportRows, "en-US")}.`;
  const s = input.trim().toLowerCase().replace(/[\s,_']/g, "");
  const m = /^(\d+(?:\.\d+)?)([km]?)$/.exec(s);
  if (!m) return { ok: false, message: bounds };
  const mult = m[2] === "k" ? 1_000 : m[2] === "m" ? 1_000_000 : 1;
  const rows = Math.round(Number(m[1]) * mult * 1000) / 1000;
  if (!Number.isInteger(rows) || rows < MinExportRows || rows > MaxExportRows) return { ok: false, message: bounds };
  return { ok: true, rows };
}

/** capitalize upper-cases the first letter. */
export function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
