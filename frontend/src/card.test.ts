import { describe, expect, it } from "vitest";
import type { KindEntry } from "@taskwire/client";
import {
  downloadName, jsonSummary, kindInfo, kindTitle, metadataEntries, percentLabel, prettyJson, progressText, queueText,
  resultInfo, shownPercent, stageText, startTime, subtitle, typeName, unitOf,
} from "./card";
import { TaskStore, type TaskView } from "@taskwire/client";

const T0 = Date.parse("2026-01-02T10:00:00Z");

const exportKind: KindEntry = {
  name: "export",
  title: "CSV export",
  paramsSchema: { type: "object", properties: { rows: { type: "integer", minimum: 1, maximum: 1000000 } }, required: ["rows"] },
  workers: 2,
  totalParam: "rows",
};

function task(over: Partial<TaskView> = {}): TaskView {
  const s = new TaskStore();
  s.accepted("t1", "export", { rows: 6000 }, T0, 6000);
  return { ...s.get("t1")!, createdAt: "2026-01-02T10:00:05Z", ...over };
}

describe("card text", () => {
  it("names the kind and tells tasks apart by start time and params", () => {
    const k = kindInfo(exportKind);
    expect(kindTitle("export", exportKind)).toBe("CSV export");
    expect(kindTitle("video.transcode")).toBe("Video transcode");
    expect(subtitle(task(), k, T0, "en-GB", "UTC")).toBe("Started 10:00:05 · rows 6,000");
    expect(subtitle(task(), k, T0 + 86_400_000, "en-GB", "UTC")).toBe("Started 2 Jan, 10:00:05 · rows 6,000");
    expect(startTime(undefined, T0)).toBe("");
  });

  it("says how much is done in the unit of the total param", () => {
    const k = kindInfo(exportKind);
    expect(unitOf(k)).toBe("rows");
    expect(progressText(task({ done: 1500, total: 6000 }), unitOf(k), "en-US")).toBe("1,500 of 6,000 rows");
    expect(progressText(task({ done: 3, total: 12, rows: undefined }), "", "en-US")).toBe("3 of 12");
    expect(progressText(task({ total: 0, rows: undefined }), "rows")).toBe("");
    const { totalParam: _t, ...rest } = exportKind;
    expect(unitOf(kindInfo({ ...rest, settings: { totalParam: "rows" } }))).toBe("rows");
    // Not named: the param whose value is the total.
    expect(unitOf(kindInfo(rest), task({ total: 6000 }))).toBe("rows");
    expect(unitOf(kindInfo(rest), task({ total: 12 }))).toBe("");
  });

  it("shows the same number on the label as on the bar", () => {
    expect([0, 0.05, 0.42, 1, 52.7, 99.99, 100].map(shownPercent)).toEqual([0, 0.1, 0.4, 1, 52, 99, 100]);
    expect(percentLabel(52.7)).toBe("52%");
  });

  it("says where a queued task stands", () => {
    expect(queueText(task({ queuePosition: 0 }))).toBe("Next in line");
    expect(queueText(task({ queuePosition: 3 }), 2, "en-US")).toBe("3 tasks ahead");
    expect(queueText(task({ queuePosition: 1, noLiveWorker: true }))).toBe("1 task ahead · waiting for a worker");
    expect(queueText(task({}), 0)).toBe("Waiting for a worker");
    expect(queueText(task({}))).toBe("Waiting for a worker");
  });

  it("says the stage by its message, else its id", () => {
    expect(stageText(task({ stage: "render", stageMessage: "Drawing page 3" }))).toBe("Drawing page 3");
    expect(stageText(task({ stage: "render", stageMessage: "" }))).toBe("Render");
  });

  it("describes results", () => {
    const csv = { url: "/r", rows: 1500, bytes: 91_234, filename: "orders.csv", contentType: "text/csv; charset=utf-8" };
    expect(resultInfo(csv, "en-US")).toBe("CSV · 91 kB · 1,500 rows");
    expect(downloadName(csv)).toBe("orders.csv");
    expect(typeName("application/pdf")).toBe("PDF");
    expect(typeName("video/mp4")).toBe("video/mp4");
    expect(downloadName({ url: "/r", rows: 0, bytes: 1, filename: undefined, contentType: "application/pdf" })).toBe("PDF result");
    const json = { url: "/r", rows: 0, bytes: 0, filename: undefined, contentType: "application/json", value: { a: 1 } };
    expect(resultInfo(json)).toBe("JSON");
    expect(jsonSummary({ weights: [], bias: 0, epochs: 1, loss: 0.1, accuracy: 1 })).toBe("5 keys: weights, bias, epochs, loss, …");
    expect(jsonSummary([1, 2])).toBe("array of 2");
    expect(prettyJson({ a: [1] })).toEqual({ text: '{\n  "a": [\n    1\n  ]\n}', cut: false });
    expect(prettyJson({ a: "x".repeat(50) }, 10).cut).toBe(true);
  });

  it("lists metadata as text", () => {
    expect(metadataEntries({ pages: 12, rows: 24000, ratio: 0.123456789, ok: true, list: [1, 2], none: null }, "en-US")).toEqual([
      ["pages", "12"],
      ["rows", "24,000"],
      ["ratio", "0.123457"],
      ["ok", "yes"],
      ["list", "[1,2]"],
      ["none", "—"],
    ]);
    expect(metadataEntries(undefined)).toEqual([]);
  });
});
