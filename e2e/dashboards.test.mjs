// The Grafana dashboard (deploy/grafana/taskwire.json) and the Prometheus alerting
// rules (deploy/prometheus/alerts.yaml) against the real binaries: both files parse
// and have the shape Grafana and Prometheus load, every query parses (with the
// grammar of Prometheus's own query editor), and every metric and label it uses is
// one that /metrics of taskwire-server or taskwire-worker really serves, read as
// its type allows (counters and histograms over a range, gauges not), after one
// completed and one failed task (so that labelled series such as the failure
// codes exist). A renamed metric or label fails here instead of leaving
// a panel empty or an alert that can never fire.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';

import { parser as promql } from '@prometheus-io/lezer-promql';
import { parse as parseYaml } from 'yaml';

import { closeAll, connect } from './lib/client.mjs';
import { parseMetrics } from './lib/metrics.mjs';
import { waitForHttp } from './lib/proc.mjs';
import { startRedis } from './lib/redis.mjs';
import { Api, ack, startServer, startWorker, stopSystem, until, waitFinal, waitLog } from './lib/taskwire.mjs';

const deployDir = path.join(import.meta.dirname, '..', 'deploy');
const dashboardPath = path.join(deployDir, 'grafana', 'taskwire.json');
const alertsPath = path.join(deployDir, 'prometheus', 'alerts.yaml');

// Labels Prometheus adds to every scraped series; no /metrics serves them.
const TARGET_LABELS = new Set(['job', 'instance']);
// Grafana's variables that a dashboard query may use.
const GRAFANA_VARIABLES = new Set(['$__rate_interval', '$__interval', '$__range']);

after(() => stopSystem());
afterEach(() => closeAll());

/**
 * dashboardQueries returns every query of the dashboard as {where, expr}, checking
 * the structure of the dashboard and its panels on the way.
 */
function dashboardQueries(d) {
  assert.equal(typeof d.uid, 'string');
  assert.ok(d.uid.length > 0 && d.uid.length <= 40, `uid ${d.uid}`);
  assert.equal(typeof d.title, 'string');
  assert.ok(Number.isInteger(d.schemaVersion) && d.schemaVersion >= 36, `schemaVersion ${d.schemaVersion}`);
  const vars = d.templating?.list ?? [];
  const ds = vars.find((v) => v.name === 'datasource');
  assert.ok(ds, 'no templating variable "datasource"');
  assert.equal(ds.type, 'datasource');
  assert.equal(ds.query, 'prometheus');

  const out = [];
  const ids = new Set();
  const all = d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  assert.ok(all.length > 0, 'no panels');
  for (const p of all) {
    const where = `panel ${p.id} "${p.title}"`;
    assert.ok(Number.isInteger(p.id) && !ids.has(p.id), `${where}: id missing or repeated`);
    ids.add(p.id);
    assert.ok(p.title, `${where}: no title`);
    const g = p.gridPos;
    assert.ok(g && [g.x, g.y, g.w, g.h].every(Number.isInteger) && g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0,
      `${where}: bad gridPos ${JSON.stringify(g)}`);
    if (p.type === 'row') continue;
    assert.ok(['timeseries', 'stat', 'gauge', 'table', 'bargauge'].includes(p.type), `${where}: type ${p.type}`);
    assert.equal(p.datasource?.uid, '${datasource}', `${where}: datasource`);
    assert.ok(Array.isArray(p.targets) && p.targets.length > 0, `${where}: no targets`);
    const refs = new Set();
    for (const t of p.targets) {
      assert.ok(t.refId && !refs.has(t.refId), `${where}: refId missing or repeated`);
      refs.add(t.refId);
      assert.equal(t.datasource?.uid, '${datasource}', `${where} ${t.refId}: datasource`);
      assert.equal(typeof t.expr, 'string', `${where} ${t.refId}: no expr`);
      for (const v of t.expr.match(/\$\w+/g) ?? []) {
        assert.ok(GRAFANA_VARIABLES.has(v), `${where} ${t.refId}: unknown variable ${v}`);
      }
      out.push({ where: `${where} ${t.refId}`, expr: t.expr });
    }
  }
  return out;
}

/**
 * alertQueries returns every alert's query as {where, expr}, checking the
 * structure of the rule file on the way.
 */
function alertQueries(file) {
  assert.deepEqual(Object.keys(file), ['groups']);
  assert.ok(Array.isArray(file.groups) && file.groups.length > 0);
  const out = [];
  const names = new Set();
  for (const g of file.groups) {
    assert.ok(g.name, 'a group without a name');
    assert.ok(Array.isArray(g.rules) && g.rules.length > 0, `group ${g.name}: no rules`);
    for (const r of g.rules) {
      const where = `alert ${r.alert}`;
      assert.match(r.alert ?? '', /^Taskwire[A-Z][A-Za-z]+$/, `group ${g.name}: rule without a proper alert name`);
      assert.ok(!names.has(r.alert), `${where}: repeated`);
      names.add(r.alert);
      assert.deepEqual(Object.keys(r).sort(), ['alert', 'annotations', 'expr', 'for', 'labels'], `${where}: keys`);
      assert.equal(typeof r.expr, 'string', `${where}: expr`);
      assert.doesNotMatch(r.expr, /\$/, `${where}: a variable in expr`);
      assert.match(r.for, /^[1-9][0-9]*(s|m|h)$/, `${where}: for`);
      assert.ok(['warning', 'critical'].includes(r.labels?.severity), `${where}: severity ${r.labels?.severity}`);
      for (const a of ['summary', 'description']) {
        assert.equal(typeof r.annotations?.[a], 'string', `${where}: no ${a}`);
        assert.ok(r.annotations[a].trim().length > 10, `${where}: ${a} too short`);
      }
      out.push({ where, expr: r.expr });
    }
  }
  return out;
}

/**
 * analyse parses a PromQL expression with the grammar of Prometheus's own query
 * editor and returns {errors, refs, grouping, quantiles}: the positions the
 * parser could not read; every metric selector as {name, matchers: [[label, op,
 * value]], ranged} (ranged: it is read over a range, as in rate(x[5m])); the label
 * names of by/without/on/ignoring/group_* clauses; and for each
 * histogram_quantile, the metrics and grouping labels inside it.
 */
function analyse(expr) {
  const tree = promql.parse(expr);
  const text = (n) => expr.slice(n.from, n.to);
  const out = { errors: [], refs: [], grouping: [], quantiles: [] };
  const quantiles = [];
  tree.iterate({
    enter(n) {
      if (n.type.isError) out.errors.push(n.from);
      switch (n.name) {
        case 'FunctionCall':
          if (n.node.getChild('FunctionIdentifier')?.getChild('HistogramQuantile')) {
            const q = { names: [], grouping: [] };
            quantiles.push(q);
            out.quantiles.push(q);
          }
          break;
        case 'VectorSelector': {
          const name = n.node.getChild('Identifier');
          const matchers = n.node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? [];
          const ref = {
            name: name ? text(name) : '',
            matchers: matchers.map((m) => [text(m.getChild('LabelName')), text(m.getChild('MatchOp')),
              JSON.parse(text(m.getChild('StringLiteral')))]),
            ranged: n.node.parent?.name === 'MatrixSelector' || n.node.parent?.name === 'SubqueryExpr',
          };
          out.refs.push(ref);
          for (const q of quantiles) q.names.push(ref.name);
          break;
        }
        case 'GroupingLabels':
          for (const l of n.node.getChildren('LabelName')) {
            out.grouping.push(text(l));
            for (const q of quantiles) q.grouping.push(text(l));
          }
          break;
      }
    },
    leave(n) {
      if (n.name === 'FunctionCall' && n.node.getChild('FunctionIdentifier')?.getChild('HistogramQuantile')) quantiles.pop();
    },
  });
  return out;
}

/**
 * readScrape fetches /metrics in the text format and returns {series: Map of name
 * -> label sets, types: Map of series name -> counter | gauge | histogram}. A
 * histogram's _bucket, _sum and _count series are its parts.
 */
async function readScrape(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  assert.equal(res.status, 200, `${url}: ${text.slice(0, 200)}`);
  const families = new Map();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(m[1], m[2]);
  const series = new Map();
  const types = new Map();
  for (const key of parseMetrics(text).keys()) {
    const brace = key.indexOf('{');
    const name = brace < 0 ? key : key.slice(0, brace);
    const labels = brace < 0 ? {} : Object.fromEntries(
      [...key.slice(brace + 1, -1).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], JSON.parse(`"${m[2]}"`)]));
    if (!series.has(name)) series.set(name, []);
    series.get(name).push(labels);
    const family = families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    types.set(name, families.get(family) ?? 'untyped');
  }
  return { series, types };
}

/**
 * queryProblems checks one PromQL expression against the union of the scrapes: it
 * parses; every metric exists; counters and histogram parts are only read over a
 * range (rate, increase) and gauges never are; histogram_quantile reads _bucket
 * series grouped by le; every label matched or grouped by exists on a series of
 * a metric of the expression (or is a target label), and equality matchers select
 * a series that exists. Grafana's variables stand for a range of 5m.
 */
function queryProblems(expr, { series, types }) {
  const a = analyse(expr.replace(/\$__\w+/g, '5m'));
  const problems = a.errors.length ? [`does not parse (at ${a.errors.join(', ')})`] : [];
  if (a.refs.length === 0) problems.push('no metric');
  const labelsOf = new Set(TARGET_LABELS);
  for (const ref of a.refs) {
    const sets = series.get(ref.name);
    if (!sets) {
      problems.push(`${ref.name || 'a selector without a name'} is on no /metrics`);
      continue;
    }
    for (const s of sets) for (const l of Object.keys(s)) labelsOf.add(l);
    const type = types.get(ref.name);
    const cumulative = type === 'counter' || type === 'histogram';
    if (cumulative && !ref.ranged) problems.push(`${ref.name} (${type}) is used without a range`);
    if (type === 'gauge' && ref.ranged) problems.push(`${ref.name} (gauge) is used over a range`);
    for (const [label, op, v] of ref.matchers) {
      if (TARGET_LABELS.has(label)) continue;
      if (!sets.some((s) => label in s)) problems.push(`${ref.name} has no label ${label}`);
      else if (op === '=' && !sets.some((s) => s[label] === v)) problems.push(`${ref.name} has no series ${label}="${v}"`);
    }
  }
  for (const l of a.grouping) {
    if (!labelsOf.has(l)) problems.push(`label ${l} is on none of its metrics`);
  }
  for (const q of a.quantiles) {
    if (!q.names.every((n) => n.endsWith('_bucket'))) problems.push('histogram_quantile over a series other than _bucket');
    if (!q.grouping.includes('le')) problems.push('histogram_quantile without le in its grouping');
  }
  return problems;
}

describe('the dashboard and the alerting rules', () => {
  let scrapes;

  before(async () => {
    const redis = await startRedis();
    const server = await startServer({ redis });
    // A small result limit makes a large export fail with result_too_large, so
    // that the failure counter has a series with a code.
    const worker = await startWorker({ redis, env: { METRICS_ADDR: '127.0.0.1:0', RESULT_MAX_BYTES: '4096' } });
    const { metricsAddr } = await waitLog(worker.proc, 'worker started');
    await waitForHttp(`http://${metricsAddr}/readyz`, 10_000);

    const api = await Api.session(server.url);
    const socket = await connect(server.url, { token: api.token, transports: ['websocket'] });
    const small = await api.createExport(10, { socketId: socket.id });
    const big = await api.createExport(5000, { socketId: socket.id });
    const done = await waitFinal(socket.recorder, small, 30_000);
    assert.equal(done.event, 'task:completed', JSON.stringify(done.args));
    const failed = await waitFinal(socket.recorder, big, 30_000);
    assert.equal(failed.event, 'task:failed', JSON.stringify(failed.args));
    assert.equal(failed.args[0]?.error?.code, 'result_too_large', JSON.stringify(failed.args));
    await ack(socket, 'task:subscribe', { taskId: big });

    const workerUrl = `http://${metricsAddr}/metrics`;
    // The worker counts an entry after its final event went out: wait for both.
    await until(async () => {
      const { series } = await readScrape(workerUrl);
      const ended = (n) => (series.get(n) ?? []).filter((s) => s.kind === 'export').length;
      return ended('taskwire_worker_tasks_completed_total') > 0 && ended('taskwire_worker_tasks_failed_total') > 0;
    }, { timeoutMs: 10_000, what: 'the worker to count both tasks' });
    scrapes = [await readScrape(`${server.url}/metrics`), await readScrape(workerUrl)];
  });

  /** merged is the union of the scrapes of server and worker. */
  function merged() {
    const series = new Map();
    const types = new Map();
    for (const s of scrapes) {
      for (const [name, sets] of s.series) series.set(name, [...(series.get(name) ?? []), ...sets]);
      for (const [name, type] of s.types) types.set(name, type);
    }
    return { series, types };
  }

  it('every dashboard query uses metrics and labels that /metrics serves', () => {
    const queries = dashboardQueries(JSON.parse(fs.readFileSync(dashboardPath, 'utf8')));
    const all = merged();
    const problems = queries.flatMap((q) => queryProblems(q.expr, all).map((p) => `${q.where}: ${p}: ${q.expr}`));
    assert.deepEqual(problems, []);
  });

  it('every alert has its fields and uses metrics and labels that /metrics serves', () => {
    const queries = alertQueries(parseYaml(fs.readFileSync(alertsPath, 'utf8')));
    const all = merged();
    const problems = queries.flatMap((q) => queryProblems(q.expr, all).map((p) => `${q.where}: ${p}: ${q.expr}`));
    assert.deepEqual(problems, []);
  });

  it('covers what an operator watches', () => {
    const exprs = [
      ...dashboardQueries(JSON.parse(fs.readFileSync(dashboardPath, 'utf8'))),
      ...alertQueries(parseYaml(fs.readFileSync(alertsPath, 'utf8'))),
    ].map((q) => q.expr).join('\n');
    for (const name of ['taskwire_queue_lag', 'taskwire_queue_pending', 'taskwire_worker_tasks_failed_total',
      'taskwire_event_delay_seconds_bucket', 'taskwire_socketio_connections', 'taskwire_redis_errors_total',
      'taskwire_tasks_delivery_seconds_bucket', 'taskwire_tasks_undelivered_total']) {
      assert.ok(exprs.includes(name), `neither the dashboard nor the alerts use ${name}`);
    }
  });

  it('finds what is wrong in a query', () => {
    const all = merged();
    assert.deepEqual(queryProblems('sum(rate(taskwire_no_such_total[5m]))', all), ['taskwire_no_such_total is on no /metrics']);
    assert.deepEqual(queryProblems('sum(taskwire_redis_errors_total)', all),
      ['taskwire_redis_errors_total (counter) is used without a range']);
    assert.deepEqual(queryProblems('sum by (kind) (taskwire_socketio_connections)', all),
      ['label kind is on none of its metrics']);
    assert.deepEqual(queryProblems('taskwire_socketio_connections{transport="carrier-pigeon"}', all),
      ['taskwire_socketio_connections has no series transport="carrier-pigeon"']);
    assert.deepEqual(queryProblems('histogram_quantile(0.99, sum(rate(taskwire_event_delay_seconds_bucket[5m])))', all),
      ['histogram_quantile without le in its grouping']);
    assert.deepEqual(queryProblems('sum(rate(taskwire_redis_errors_total[5m])', all), ['does not parse (at 41)']);
    assert.deepEqual(queryProblems('max(taskwire_queue_lag[5m])', all), ['taskwire_queue_lag (gauge) is used over a range']);
  });
});
