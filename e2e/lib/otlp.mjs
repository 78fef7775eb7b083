// An OTLP/HTTP trace receiver in the test's process: the endpoint that
// taskwire's binaries export their spans to (OTEL_EXPORTER_OTLP_ENDPOINT), which
// keeps every span it is sent, decoded into plain objects.
//
// It accepts the JSON encoding of OTLP (ExportTraceServiceRequest, as the
// binaries send it whatever OTEL_EXPORTER_OTLP_PROTOCOL says), gzipped or not,
// at POST /v1/traces. Anything else is recorded and refused (404 for another
// path, 415 for another content type, 400 for a body that is no OTLP/JSON), so a
// test that asserts on the requests sees it.

import http from 'node:http';
import zlib from 'node:zlib';

import { onCleanup } from './proc.mjs';

/** SPAN_KIND are OTLP's span kinds (the numbers of its JSON encoding). */
export const SPAN_KIND = Object.freeze({ INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 });

/**
 * @typedef {object} Span
 * @property {string} service       the resource's service.name
 * @property {string} traceId       32 hex digits
 * @property {string} spanId        16 hex digits
 * @property {string} parentSpanId  '' for a root span
 * @property {string} name
 * @property {number} kind          SPAN_KIND
 * @property {bigint} start         start time, Unix nanoseconds
 * @property {bigint} end
 * @property {Record<string, any>} attributes  int values as numbers (bigint beyond 2^53)
 * @property {{name: string, attributes: Record<string, any>}[]} events
 * @property {{code: number, message: string}} status
 */

/**
 * @typedef {object} ExportRequest
 * @property {string} method
 * @property {string} path
 * @property {string} contentType  without parameters
 * @property {number} status       what the receiver answered
 * @property {number} spans        how many spans it held
 */

/**
 * value decodes an OTLP AnyValue in JSON form.
 *
 * @param {any} v
 */
export function decodeValue(v) {
  if (v === undefined || v === null) return undefined;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) {
    const n = BigInt(v.intValue); // a string (OTLP/JSON's 64-bit rule) or a number
    return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
  }
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('arrayValue' in v) return (v.arrayValue.values ?? []).map(decodeValue);
  if ('kvlistValue' in v) return attributes(v.kvlistValue.values);
  if ('bytesValue' in v) return Buffer.from(v.bytesValue, 'base64');
  throw new Error(`OTLP value of no known type: ${JSON.stringify(v)}`);
}

function attributes(kvs = []) {
  const out = {};
  for (const kv of kvs) out[kv.key] = decodeValue(kv.value);
  return out;
}

/**
 * decodeTraces returns the spans of an ExportTraceServiceRequest in JSON form.
 * It throws on a body of another shape.
 *
 * @param {any} req
 * @returns {Span[]}
 */
export function decodeTraces(req) {
  if (!req || !Array.isArray(req.resourceSpans)) throw new Error('no resourceSpans');
  const out = [];
  for (const rs of req.resourceSpans) {
    const res = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        if (!/^[0-9a-f]{32}$/.test(s.traceId) || !/^[0-9a-f]{16}$/.test(s.spanId)) {
          throw new Error(`span ids not in hex: ${JSON.stringify(s)}`);
        }
        out.push({
          service: res['service.name'],
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? '',
          name: s.name,
          kind: s.kind ?? 0,
          start: BigInt(s.startTimeUnixNano ?? 0),
          end: BigInt(s.endTimeUnixNano ?? 0),
          attributes: attributes(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attributes(e.attributes) })),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
        });
      }
    }
  }
  return out;
}

/**
 * @typedef {object} Receiver
 * @property {string} url  http://127.0.0.1:<port>, the OTEL_EXPORTER_OTLP_ENDPOINT
 * @property {ExportRequest[]} requests  every request, in arrival order
 * @property {() => Span[]} spans  every span received, in arrival order
 * @property {() => string} dump   the spans, one a line, for failure messages
 * @property {() => Promise<void>} close
 */

/**
 * startReceiver starts a receiver on a free loopback port. It is closed when t
 * (a node:test context) ends, or at the latest when the process exits.
 *
 * @param {{after: (fn: () => any) => void}} [t]
 * @returns {Promise<Receiver>}
 */
export async function startReceiver(t) {
  const requests = [];
  const spans = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      const entry = { method: req.method, path: req.url, contentType, status: 200, spans: 0 };
      requests.push(entry);
      const answer = (status, body) => {
        entry.status = status;
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== '/v1/traces') return answer(404, { message: 'not found' });
      if (contentType !== 'application/json') return answer(415, { message: `not OTLP/JSON: ${contentType}` });
      let got;
      try {
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = zlib.gunzipSync(body);
        got = decodeTraces(JSON.parse(body.toString('utf8')));
      } catch (err) {
        return answer(400, { message: err.message });
      }
      entry.spans = got.length;
      spans.push(...got);
      return answer(200, {}); // ExportTraceServiceResponse, all accepted
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  server.unref();
  const close = () => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  onCleanup(() => server.close());
  t?.after(close);
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    spans: () => [...spans],
    dump: () => spans.map((s) => `${s.service} ${s.traceId}/${s.spanId} <- ${s.parentSpanId || '-'} ${s.name} ` +
      `${JSON.stringify(s.attributes)}`).join('\n'),
    close,
  };
}
