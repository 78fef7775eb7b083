// Reading Prometheus metrics from /metrics of the binaries: parse the text
// exposition format, look up series by name and labels, compare two scrapes, and
// wait (bounded) until a condition on the metrics holds.

/**
 * @typedef {Map<string, number>} Metrics  series key (see seriesKey) -> value
 */

/**
 * seriesKey returns the key of a series: its name, then its labels sorted by
 * name, as name{a="1",b="2"} (just name without labels).
 *
 * @param {string} name
 * @param {Record<string, string>} [labels]
 * @returns {string}
 */
export function seriesKey(name, labels = {}) {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return name;
  return `${name}{${keys.map((k) => `${k}=${JSON.stringify(String(labels[k]))}`).join(',')}}`;
}

/**
 * parseMetrics parses the Prometheus text format (version 0.0.4) into a Map of
 * series key -> value. Comments and timestamps are ignored; it throws on a line it
 * cannot read, quoting it.
 *
 * @param {string} text
 * @returns {Metrics}
 */
export function parseMetrics(text) {
  const out = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+\S+)?$/);
    if (!m) throw new Error(`metrics: cannot parse line: ${line}`);
    const labels = m[2] ? parseLabels(m[2].slice(1, -1), line) : {};
    const v = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (Number.isNaN(v) && m[3] !== 'NaN') throw new Error(`metrics: bad value in line: ${line}`);
    out.set(seriesKey(m[1], labels), v);
  }
  return out;
}

function parseLabels(s, line) {
  const labels = {};
  let i = 0;
  while (i < s.length) {
    const eq = s.indexOf('=', i);
    if (eq < 0 || s[eq + 1] !== '"') throw new Error(`metrics: bad labels in line: ${line}`);
    const name = s.slice(i, eq).trim();
    let j = eq + 2;
    let value = '';
    for (; j < s.length && s[j] !== '"'; j++) {
      if (s[j] === '\\') {
        j++;
        value += s[j] === 'n' ? '\n' : s[j];
      } else {
        value += s[j];
      }
    }
    if (j >= s.length) throw new Error(`metrics: unterminated label value in line: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (s[i] === ',') i++;
  }
  return labels;
}

/**
 * scrape fetches url (a /metrics endpoint) and parses it. It fails with the status
 * and the start of the body when the answer is not 200.
 *
 * @param {string} url
 * @param {{timeoutMs?: number}} [opts]
 * @returns {Promise<Metrics>}
 */
export async function scrape(url, { timeoutMs = 5_000 } = {}) {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`scrape ${url}: status ${res.status}: ${text.slice(0, 300)}`);
  return parseMetrics(text);
}

/**
 * value returns the value of one series, or undefined when it is absent.
 *
 * @param {Metrics} metrics
 * @param {string} name
 * @param {Record<string, string>} [labels]
 * @returns {number | undefined}
 */
export function value(metrics, name, labels) {
  return metrics.get(seriesKey(name, labels));
}

/**
 * sum adds up every series of name whose labels include labels (all series of the
 * family when labels is empty); 0 when there is none.
 *
 * @param {Metrics} metrics
 * @param {string} name
 * @param {Record<string, string>} [labels]
 * @returns {number}
 */
export function sum(metrics, name, labels = {}) {
  let total = 0;
  const want = Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(String(v))}`);
  for (const [key, v] of metrics) {
    const brace = key.indexOf('{');
    const n = brace < 0 ? key : key.slice(0, brace);
    if (n !== name) continue;
    if (want.every((w) => key.includes(w))) total += v;
  }
  return total;
}

/**
 * delta returns after - before for one series (absent counts as 0).
 *
 * @param {Metrics} before
 * @param {Metrics} after
 * @param {string} name
 * @param {Record<string, string>} [labels]
 * @returns {number}
 */
export function delta(before, after, name, labels) {
  return (value(after, name, labels) ?? 0) - (value(before, name, labels) ?? 0);
}

/**
 * waitMetrics scrapes url until check(metrics) returns no problems (an empty
 * array) and returns those metrics; after timeoutMs it fails with the last
 * problems. For counters that a process updates after the event a test awaited
 * (a worker settles a task after its final event went out).
 *
 * @param {string} url
 * @param {(m: Metrics) => string[]} check  returns what is still wrong
 * @param {{timeoutMs?: number, intervalMs?: number, what?: string}} [opts]
 * @returns {Promise<Metrics>}
 */
export async function waitMetrics(url, check, { timeoutMs = 10_000, intervalMs = 50, what = url } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = await scrape(url);
    const problems = check(m);
    if (problems.length === 0) return m;
    if (Date.now() > deadline) {
      throw new Error(`${what}: metrics not as expected within ${timeoutMs} ms:\n  ${problems.join('\n  ')}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * expectDeltas returns a check for waitMetrics: every listed series must have
 * moved by exactly its amount since before. Entries are [name, labels, amount].
 *
 * @param {Metrics} before
 * @param {[string, Record<string, string> | undefined, number][]} wanted
 * @returns {(m: Metrics) => string[]}
 */
export function expectDeltas(before, wanted) {
  return (after) => wanted
    .filter(([name, labels, amount]) => delta(before, after, name, labels) !== amount)
    .map(([name, labels, amount]) =>
      `${seriesKey(name, labels)} moved by ${delta(before, after, name, labels)}, want ${amount}` +
      (value(after, name, labels) === undefined ? ' (series absent)' : ''));
}
