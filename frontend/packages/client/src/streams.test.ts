import { describe, expect, it } from "vitest";
import { chartData, held, mergeChunk, mergeFetched, missingFrom, newStream, noteKnown, polyline, shapeOf, tailLines } from "./streams.js";

describe("mergeChunk: chunks by offset", () => {
  it("appends at the end, drops duplicates, reports gaps", () => {
    const s = newStream();
    expect(mergeChunk(s, 0, ["a", "b"])).toEqual({ changed: true, gapFrom: undefined });
    expect(mergeChunk(s, 2, ["c"])).toEqual({ changed: true, gapFrom: undefined });
    // A repeat of what is held: nothing new.
    expect(mergeChunk(s, 1, ["b", "c"])).toEqual({ changed: false, gapFrom: undefined });
    // Overlapping: only the new part.
    expect(mergeChunk(s, 2, ["c", "d", "e"])).toEqual({ changed: true, gapFrom: undefined });
    expect(s.items).toEqual(["a", "b", "c", "d", "e"]);
    // Past the end: not applied, fetch from what is held.
    expect(mergeChunk(s, 8, ["i"])).toEqual({ changed: false, gapFrom: 5 });
    expect(s.items.length).toBe(5);
    expect(s.known).toBe(9);
    expect(missingFrom(s)).toBe(5);
  });

  it("keeps at most max items, counting the dropped ones", () => {
    const s = newStream();
    mergeChunk(s, 0, [1, 2, 3, 4], 3);
    expect(s).toMatchObject({ start: 1, items: [2, 3, 4] });
    expect(held(s)).toBe(4);
    mergeChunk(s, 4, [5], 3);
    expect(s).toMatchObject({ start: 2, items: [3, 4, 5] });
  });

  it("bumps the version only on change", () => {
    const s = newStream();
    mergeChunk(s, 0, [1]);
    const v = s.version;
    mergeChunk(s, 0, [1]);
    expect(s.version).toBe(v);
  });

  it("ignores a bad offset", () => {
    const s = newStream();
    expect(mergeChunk(s, -1, [1]).changed).toBe(false);
    expect(mergeChunk(s, 1.5, [1]).changed).toBe(false);
  });
});

describe("mergeFetched and noteKnown: what a reload fetches", () => {
  it("fills a gap from the fetch, then live chunks continue", () => {
    const s = newStream();
    expect(noteKnown(s, 120)).toBe(true); // the record says 120 items exist
    expect(noteKnown(s, 100)).toBe(false);
    expect(missingFrom(s)).toBe(0);
    expect(mergeFetched(s, 0, Array.from({ length: 120 }, (_, i) => i))).toBe(true);
    expect(missingFrom(s)).toBeUndefined();
    // A chunk that raced the fetch (already included) adds nothing.
    expect(mergeChunk(s, 118, [118, 119, 120]).changed).toBe(true);
    expect(held(s)).toBe(121);
    expect(s.items.at(-1)).toBe(120);
  });

  it("restarts at the server's window when older items are gone", () => {
    const s = newStream();
    mergeChunk(s, 0, ["a"]);
    noteKnown(s, 20_005);
    expect(mergeFetched(s, 10_005, ["x", "y"])).toBe(true);
    expect(s).toMatchObject({ start: 10_005, items: ["x", "y"] });
  });
});

describe("shapeOf and chartData: how a stream is shown", () => {
  const metrics = [
    { epoch: 1, loss: 0.69, accuracy: 0.5 },
    { epoch: 2, loss: 0.5, accuracy: 0.7 },
    { epoch: 3, loss: 0.3, accuracy: 0.9 },
  ];

  it("charts numbers and numeric objects, tails text", () => {
    expect(shapeOf(metrics)).toBe("chart");
    expect(shapeOf([1, 2.5, 3])).toBe("chart");
    expect(shapeOf(["epoch 1: loss 0.69"])).toBe("text");
    expect(shapeOf([{ name: "x" }])).toBe("json");
    expect(shapeOf([])).toBeUndefined();
  });

  it("draws loss and accuracy over epoch", () => {
    const d = chartData(metrics);
    expect(d.x).toBe("epoch");
    expect(d.count).toBe(3);
    expect([d.xMin, d.xMax]).toEqual([1, 3]);
    expect(d.series.map((s) => [s.name, s.points.length, s.min, s.max, s.last])).toEqual([
      ["loss", 3, 0.3, 0.69, 0.3],
      ["accuracy", 3, 0.5, 0.9, 0.9],
    ]);
    const loss = d.series[0]!;
    // x from left to right; the falling loss starts at the top and ends at the bottom.
    expect(polyline(loss, d.xMin, d.xMax, 100, 50)).toBe("2.0,2.0 50.0,24.4 98.0,48.0");
  });

  it("draws bare numbers over their index in the stream", () => {
    const d = chartData([5, 6, 7], 10);
    expect(d.x).toBeUndefined();
    expect(d.series[0]?.points).toEqual([[10, 5], [11, 6], [12, 7]]);
  });

  it("thins long series, keeping the last point", () => {
    const d = chartData(Array.from({ length: 5000 }, (_, i) => i));
    const pts = polyline(d.series[0]!, d.xMin, d.xMax, 100, 10, { maxPoints: 100 }).split(" ");
    expect(pts.length).toBeLessThanOrEqual(101);
    expect(pts.at(-1)).toBe("98.0,2.0");
  });

  it("tails the last lines", () => {
    expect(tailLines(["a", "b", { c: 1 }], 2)).toEqual(["b", '{"c":1}']);
  });
});
