package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// exporter sends spans to an OTLP/HTTP receiver (POST <endpoint>, the
// collector's /v1/traces) in the JSON encoding of OTLP, which every OTLP/HTTP
// receiver accepts beside the protobuf one (the OpenTelemetry Collector, Jaeger,
// Tempo...). It is written here rather than taken from the OTLP exporter
// module because that module's requirements (gRPC and the newest genproto)
// would move the versions of the worker's Machinery dependencies, which do not
// build with them. What it sends is checked by a test against the Collector's
// own decoder.
type exporter struct {
	url     string
	headers map[string]string
	client  *http.Client
	// retryWait is the first wait before a retry of a refused export.
	retryWait time.Duration
}

func newExporter(url string, headers map[string]string, timeout time.Duration) *exporter {
	return &exporter{url: url, headers: headers, client: &http.Client{Timeout: timeout}, retryWait: 250 * time.Millisecond}
}

// ExportSpans sends spans in one request, retrying (at most 3 tries, within
// ctx) while the receiver says it is busy or unavailable.
func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	body, err := json.Marshal(encodeSpans(spans))
	if err != nil {
		return fmt.Errorf("tracing: encode spans: %w", err)
	}
	wait := e.retryWait
	for try := 1; ; try++ {
		retry, err := e.post(ctx, body)
		if err == nil || !retry || try == 3 {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait *= 2
	}
}

func (e *exporter) post(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("tracing: export: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range e.headers {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return ctx.Err() == nil, fmt.Errorf("tracing: export: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusBadGateway,
		resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout:
		return true, fmt.Errorf("tracing: export: %s", resp.Status)
	}
	return false, fmt.Errorf("tracing: export refused: %s: %s", resp.Status, bytes.TrimSpace(msg))
}

// Shutdown closes the idle connections.
func (e *exporter) Shutdown(context.Context) error {
	e.client.CloseIdleConnections()
	return nil
}

// The JSON form of OTLP's ExportTraceServiceRequest (opentelemetry-proto,
// with the OTLP/JSON rules: ids in hex, 64-bit integers as strings, enums as
// numbers, lowerCamelCase names).
type (
	otlpRequest struct {
		ResourceSpans []otlpResourceSpans `json:"resourceSpans"`
	}
	otlpResourceSpans struct {
		Resource   otlpResource     `json:"resource"`
		ScopeSpans []otlpScopeSpans `json:"scopeSpans"`
		SchemaURL  string           `json:"schemaUrl,omitempty"`
	}
	otlpResource struct {
		Attributes []otlpKeyValue `json:"attributes"`
	}
	otlpScopeSpans struct {
		Scope     otlpScope  `json:"scope"`
		Spans     []otlpSpan `json:"spans"`
		SchemaURL string     `json:"schemaUrl,omitempty"`
	}
	otlpScope struct {
		Name    string `json:"name"`
		Version string `json:"version,omitempty"`
	}
	otlpSpan struct {
		TraceID                string         `json:"traceId"`
		SpanID                 string         `json:"spanId"`
		TraceState             string         `json:"traceState,omitempty"`
		ParentSpanID           string         `json:"parentSpanId,omitempty"`
		Flags                  uint32         `json:"flags,omitempty"`
		Name                   string         `json:"name"`
		Kind                   int            `json:"kind"`
		StartTimeUnixNano      string         `json:"startTimeUnixNano"`
		EndTimeUnixNano        string         `json:"endTimeUnixNano"`
		Attributes             []otlpKeyValue `json:"attributes,omitempty"`
		DroppedAttributesCount int            `json:"droppedAttributesCount,omitempty"`
		Events                 []otlpEvent    `json:"events,omitempty"`
		DroppedEventsCount     int            `json:"droppedEventsCount,omitempty"`
		Links                  []otlpLink     `json:"links,omitempty"`
		DroppedLinksCount      int            `json:"droppedLinksCount,omitempty"`
		Status                 otlpStatus     `json:"status"`
	}
	otlpEvent struct {
		TimeUnixNano string         `json:"timeUnixNano"`
		Name         string         `json:"name"`
		Attributes   []otlpKeyValue `json:"attributes,omitempty"`
	}
	otlpLink struct {
		TraceID    string         `json:"traceId"`
		SpanID     string         `json:"spanId"`
		TraceState string         `json:"traceState,omitempty"`
		Attributes []otlpKeyValue `json:"attributes,omitempty"`
	}
	otlpStatus struct {
		Message string `json:"message,omitempty"`
		Code    int    `json:"code,omitempty"`
	}
	otlpKeyValue struct {
		Key   string    `json:"key"`
		Value otlpValue `json:"value"`
	}
	otlpValue struct {
		StringValue *string         `json:"stringValue,omitempty"`
		BoolValue   *bool           `json:"boolValue,omitempty"`
		IntValue    *string         `json:"intValue,omitempty"`
		DoubleValue *float64        `json:"doubleValue,omitempty"`
		ArrayValue  *otlpArrayValue `json:"arrayValue,omitempty"`
	}
	otlpArrayValue struct {
		Values []otlpValue `json:"values"`
	}
)

// encodeSpans groups spans by resource and instrumentation scope.
func encodeSpans(spans []sdktrace.ReadOnlySpan) *otlpRequest {
	req := &otlpRequest{}
	type scopeKey struct {
		res   int
		scope string
	}
	resIndex := map[attribute.Distinct]int{}
	scopeIndex := map[scopeKey]int{}
	for _, s := range spans {
		res := s.Resource()
		rk := res.Equivalent()
		ri, ok := resIndex[rk]
		if !ok {
			ri = len(req.ResourceSpans)
			resIndex[rk] = ri
			req.ResourceSpans = append(req.ResourceSpans, otlpResourceSpans{
				Resource: otlpResource{Attributes: attributesOf(res.Attributes())}, SchemaURL: res.SchemaURL()})
		}
		sc := s.InstrumentationScope()
		sk := scopeKey{ri, sc.Name + "\x00" + sc.Version}
		si, ok := scopeIndex[sk]
		rs := &req.ResourceSpans[ri]
		if !ok {
			si = len(rs.ScopeSpans)
			scopeIndex[sk] = si
			rs.ScopeSpans = append(rs.ScopeSpans, otlpScopeSpans{Scope: otlpScope{Name: sc.Name, Version: sc.Version}, SchemaURL: sc.SchemaURL})
		}
		rs.ScopeSpans[si].Spans = append(rs.ScopeSpans[si].Spans, encodeSpan(s))
	}
	return req
}

func encodeSpan(s sdktrace.ReadOnlySpan) otlpSpan {
	sc := s.SpanContext()
	out := otlpSpan{
		TraceID:                sc.TraceID().String(),
		SpanID:                 sc.SpanID().String(),
		TraceState:             sc.TraceState().String(),
		Flags:                  uint32(sc.TraceFlags()) | 0x100, // bit 8: the parent's remote flag is known
		Name:                   s.Name(),
		Kind:                   int(s.SpanKind()), // the same numbers as OTLP's SpanKind
		StartTimeUnixNano:      nanos(s.StartTime()),
		EndTimeUnixNano:        nanos(s.EndTime()),
		Attributes:             attributesOf(s.Attributes()),
		DroppedAttributesCount: s.DroppedAttributes(),
		DroppedEventsCount:     s.DroppedEvents(),
		DroppedLinksCount:      s.DroppedLinks(),
	}
	if p := s.Parent(); p.IsValid() {
		out.ParentSpanID = p.SpanID().String()
		if p.IsRemote() {
			out.Flags |= 0x200 // bit 9: the parent is remote
		}
	}
	for _, ev := range s.Events() {
		out.Events = append(out.Events, otlpEvent{TimeUnixNano: nanos(ev.Time), Name: ev.Name, Attributes: attributesOf(ev.Attributes)})
	}
	for _, l := range s.Links() {
		out.Links = append(out.Links, otlpLink{TraceID: l.SpanContext.TraceID().String(), SpanID: l.SpanContext.SpanID().String(),
			TraceState: l.SpanContext.TraceState().String(), Attributes: attributesOf(l.Attributes)})
	}
	st := s.Status()
	switch st.Code {
	case codes.Ok:
		out.Status = otlpStatus{Code: 1}
	case codes.Error:
		out.Status = otlpStatus{Code: 2, Message: st.Description}
	}
	return out
}

func nanos(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

func attributesOf(kvs []attribute.KeyValue) []otlpKeyValue {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]otlpKeyValue, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, otlpKeyValue{Key: string(kv.Key), Value: encodeValue(kv.Value)})
	}
	return out
}

func encodeValue(v attribute.Value) otlpValue {
	switch v.Type() {
	case attribute.BOOL:
		return boolValue(v.AsBool())
	case attribute.INT64:
		return intValue(v.AsInt64())
	case attribute.FLOAT64:
		return doubleValue(v.AsFloat64())
	case attribute.BOOLSLICE:
		return arrayValue(v.AsBoolSlice(), boolValue)
	case attribute.INT64SLICE:
		return arrayValue(v.AsInt64Slice(), intValue)
	case attribute.FLOAT64SLICE:
		return arrayValue(v.AsFloat64Slice(), doubleValue)
	case attribute.STRINGSLICE:
		return arrayValue(v.AsStringSlice(), stringValue)
	}
	return stringValue(v.Emit())
}

func stringValue(s string) otlpValue { return otlpValue{StringValue: &s} }
func boolValue(b bool) otlpValue     { return otlpValue{BoolValue: &b} }
func doubleValue(f float64) otlpValue {
	return otlpValue{DoubleValue: &f}
}
func intValue(n int64) otlpValue {
	s := strconv.FormatInt(n, 10)
	return otlpValue{IntValue: &s}
}

func arrayValue[T any](xs []T, enc func(T) otlpValue) otlpValue {
	vals := make([]otlpValue, len(xs))
	for i, x := range xs {
		vals[i] = enc(x)
	}
	return otlpValue{ArrayValue: &otlpArrayValue{Values: vals}}
}

var _ sdktrace.SpanExporter = (*exporter)(nil)
