// Turning raw scenario results into the table printed at the end and RESULTS.md.

/** METRICS lists, per scenario, what the table shows. sum: added over runs, else the median. */
const METRICS = {
  latency: [
    ['p50Ms', 'p50 latency (ms)'], ['p99Ms', 'p99 latency (ms)'], ['maxMs', 'max latency (ms)'],
    ['lost', 'lost events', 'sum'], ['stalls', 'connect stalls', 'sum'],
  ],
  fanout: [
    ['cpuS', 'server CPU (s)'], ['cpuUsPerDelivery', 'server CPU per delivery (us)'],
    ['p50Ms', 'p50 latency (ms)'], ['p99Ms', 'p99 latency (ms)'],
    ['lost', 'lost events', 'sum'], ['stalls', 'connect stalls', 'sum'],
  ],
  targeted: [
    ['cpuS', 'server CPU (s)'], ['cpuUsPerDelivery', 'server CPU per delivery (us)'],
    ['p50Ms', 'p50 latency (ms)'], ['p99Ms', 'p99 latency (ms)'],
    ['lost', 'lost events', 'sum'], ['stalls', 'connect stalls', 'sum'],
  ],
  idle: [
    ['rssKBPerConn', 'RSS per connection (KB)'], ['rssAfterMB', 'RSS with all connected (MB)'],
    ['connectCpuUsPerConn', 'server CPU per connect (us)'], ['idleCpuPct', 'idle server CPU (%)'],
    ['stalls', 'connect stalls', 'sum'], ['connectErrors', 'connect errors', 'sum'],
  ],
  polling: [
    ['cpuS', 'server CPU (s)'], ['cpuUsPerDelivery', 'server CPU per delivery (us)'],
    ['p50Ms', 'p50 latency (ms)'], ['p99Ms', 'p99 latency (ms)'],
    ['lost', 'lost events', 'sum'], ['stalls', 'connect stalls', 'sum'],
  ],
  tasks: [
    ['tasksPerS', 'tasks per second'], ['firstProgressP50Ms', 'enqueue -> first progress p50 (ms)'],
    ['firstProgressP99Ms', 'enqueue -> first progress p99 (ms)'], ['completionP50Ms', 'enqueue -> completed p50 (ms)'],
    ['completionP99Ms', 'enqueue -> completed p99 (ms)'], ['serverCpuMsPerTask', 'server CPU per task (ms)'],
    ['lost', 'tasks without completion', 'sum'], ['stalls', 'connect stalls', 'sum'],
  ],
  scale: [
    ['rssKBPerConn', 'RSS per connection (KB)'], ['rssMB', 'RSS (MB)'],
    ['connectCpuUsPerConn', 'server CPU per connect (us)'], ['cpuUsPerDelivery', 'broadcast CPU per delivery (us)'],
    ['p99Ms', 'broadcast p99 latency (ms)'], ['lost', 'lost events', 'sum'], ['stalls', 'connect stalls', 'sum'],
  ],
};

const STACKS = ['node', 'taskwire'];

function median(values) {
  const a = values.filter((v) => Number.isFinite(v)).sort((x, y) => x - y);
  if (!a.length) return NaN;
  const m = Math.floor(a.length / 2);
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
}

/**
 * summarize turns raw results into rows: {group, label, agg, cells: {stack: {value, min, max, n, errors}}}.
 */
export function summarize(raw) {
  const rows = [];
  for (const [name, byStack] of Object.entries(raw.results)) {
    const groups = name === 'scale' ? scaleGroups(byStack) : [[name, byStack]];
    for (const [group, runsByStack] of groups) {
      for (const [key, label, agg] of METRICS[name] ?? []) {
        const cells = {};
        for (const s of STACKS) {
          const runs = runsByStack[s];
          if (!runs) continue;
          const ok = runs.filter((r) => !r.error);
          const values = ok.map((r) => r[key]).filter((v) => typeof v === 'number');
          cells[s] = {
            value: agg === 'sum' ? values.reduce((x, y) => x + y, 0) : median(values),
            min: Math.min(...values),
            max: Math.max(...values),
            n: values.length,
            errors: runs.length - ok.length,
          };
        }
        rows.push({ group, key, label, agg, cells });
      }
    }
  }
  return rows;
}

function scaleGroups(byStack) {
  const steps = new Set();
  for (const runs of Object.values(byStack)) for (const r of runs) if (!r.error) for (const n of Object.keys(r)) steps.add(n);
  return [...steps].sort((a, b) => a - b).map((n) => [`scale ${n}`,
    Object.fromEntries(Object.entries(byStack).map(([s, runs]) => [s, runs.map((r) => (r.error ? r : r[n] ?? { error: 'missing' }))]))]);
}

function fmt(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '-';
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function ratio(row) {
  const n = row.cells.node?.value;
  const t = row.cells.taskwire?.value;
  if (!Number.isFinite(n) || !Number.isFinite(t)) return '';
  if (row.agg === 'sum') return n === 0 && t === 0 ? '' : (n === 0 ? '' : `${(t / n).toFixed(2)}x`);
  if (n === 0) return '';
  return `${(t / n).toFixed(2)}x`;
}

function cellText(c, withRange) {
  if (!c) return 'n/a';
  let s = fmt(c.value);
  if (withRange && c.agg !== 'sum' && c.n > 1 && Number.isFinite(c.min)) s += ` (${fmt(c.min)}-${fmt(c.max)})`;
  if (c.errors) s += ` [${c.errors} failed]`;
  return s;
}

/** renderTable is the plain-text table printed at the end of a run. */
export function renderTable(rows) {
  const header = ['scenario', 'metric', 'node', 'taskwire', 'taskwire/node'];
  const body = rows.map((r) => [r.group, r.label, cellText(r.cells.node), cellText(r.cells.taskwire), ratio(r)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cols) => cols.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** renderMarkdown is RESULTS.md: machine notes, sizes, the table with ranges, the raw runs' failures. */
export function renderMarkdown(raw, rows) {
  const out = [];
  out.push('# Benchmark results', '');
  out.push('Written by `bench/run` (see `bench/README.md` for what each scenario does and how it is measured).',
    `Each cell is the median of ${raw.runs} runs (min-max in parentheses); lost events, stalls and errors are`,
    'totals over all runs. Ratios are taskwire / node: below 1 is better for taskwire except for tasks per second.', '');
  out.push('## Machine', '');
  for (const [k, v] of Object.entries(raw.notes)) out.push(`- ${k}: ${v}`);
  out.push('- server and clients on the same machine; clients are the real `socket.io-client` 4.8.4 in separate Node processes', '');
  out.push('## Sizes', '');
  for (const [k, v] of Object.entries(raw.sizes)) out.push(`- ${k}: \`${JSON.stringify(v)}\``);
  out.push('', '## Results', '');
  out.push('| scenario | metric | node | taskwire | taskwire/node |', '|---|---|---:|---:|---:|');
  for (const r of rows) {
    out.push(`| ${r.group} | ${r.label} | ${cellText(withAgg(r.cells.node, r.agg), true)} | ${cellText(withAgg(r.cells.taskwire, r.agg), true)} | ${ratio(r)} |`);
  }
  const failures = [];
  for (const [name, byStack] of Object.entries(raw.results)) {
    for (const [s, runs] of Object.entries(byStack)) {
      runs.forEach((r, i) => { if (r.error) failures.push(`- ${name} ${s} run ${i + 1}: ${r.error.split('\n')[0]}`); });
    }
  }
  if (failures.length) out.push('', '## Failed runs', '', ...failures);
  out.push('');
  return out.join('\n');
}

function withAgg(c, agg) {
  return c ? { ...c, agg } : c;
}

/**
 * smokeProblems lists what must never happen, whatever the speed: a scenario that
 * failed to run, and lost events, duplicates or connect stalls of taskwire.
 */
export function smokeProblems(raw) {
  const problems = [];
  for (const [name, byStack] of Object.entries(raw.results)) {
    for (const [s, runs] of Object.entries(byStack)) {
      runs.forEach((r, i) => {
        if (r.error) {
          problems.push(`${name} ${s} run ${i + 1} failed: ${r.error.split('\n')[0]}`);
          return;
        }
        if (s !== 'taskwire') return;
        const flat = name === 'scale' ? Object.entries(r).map(([n, x]) => [`${name} ${n}`, x]) : [[name, r]];
        for (const [label, x] of flat) {
          for (const k of ['lost', 'stalls', 'dups', 'connectErrors']) {
            if (x[k]) problems.push(`${label} taskwire run ${i + 1}: ${k} = ${x[k]}`);
          }
        }
      });
    }
  }
  return problems;
}
