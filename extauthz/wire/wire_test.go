package wire

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Every field of this package's messages must have the number, name and
// type of Envoy's field it stands for, or a request would decode wrong,
// or a response encode wrong.
func TestFieldsMatchEnvoy(t *testing.T) {
	checked := map[protoreflect.FullName]bool{}
	var walk func(ours, envoy protoreflect.MessageDescriptor)
	walk = func(ours, envoy protoreflect.MessageDescriptor) {
		fs := ours.Fields()
		for i := range fs.Len() {
			f := fs.Get(i)
			where := fmt.Sprintf("%s.%s (%d) against %s", ours.FullName(), f.Name(), f.Number(), envoy.FullName())
			ef := envoy.Fields().ByNumber(f.Number())
			if ef == nil {
				t.Errorf("%s: Envoy has no field %d", where, f.Number())
				continue
			}
			if ef.Name() != f.Name() {
				t.Errorf("%s: Envoy's field %d is %s", where, f.Number(), ef.Name())
				continue
			}
			checked[f.FullName()] = true
			if ef.IsMap() {
				// A map is a repeated entry {key = 1; value = 2}.
				if f.Cardinality() != protoreflect.Repeated || f.Kind() != protoreflect.MessageKind {
					t.Errorf("%s: a map must be a repeated entry message", where)
					continue
				}
				key, val := f.Message().Fields().ByNumber(1), f.Message().Fields().ByNumber(2)
				if f.Message().Fields().Len() != 2 || key == nil || val == nil || key.Name() != "key" || val.Name() != "value" {
					t.Errorf("%s: a map entry must be {key = 1; value = 2}", where)
					continue
				}
				checked[key.FullName()], checked[val.FullName()] = true, true
				if key.Kind() != ef.MapKey().Kind() {
					t.Errorf("%s: key is %v, Envoy's %v", where, key.Kind(), ef.MapKey().Kind())
				}
				// A message value may be repeated bytes: its parts, merged
				// when joined; anything else is single, as Envoy's.
				if val.Cardinality() == protoreflect.Repeated && (val.Kind() != protoreflect.BytesKind || ef.MapValue().Kind() != protoreflect.MessageKind) {
					t.Errorf("%s: a repeated value must be bytes standing for a message", where)
				}
				sameType(t, where+" value", val, ef.MapValue(), walk)
				continue
			}
			if f.Cardinality() != ef.Cardinality() {
				t.Errorf("%s: cardinality %v, Envoy's %v", where, f.Cardinality(), ef.Cardinality())
			}
			sameType(t, where, f, ef, walk)
		}
	}
	walk((&CheckRequest{}).ProtoReflect().Descriptor(), (&authv3.CheckRequest{}).ProtoReflect().Descriptor())
	walk((&CheckResponse{}).ProtoReflect().Descriptor(), (&authv3.CheckResponse{}).ProtoReflect().Descriptor())
	// A field the walks did not reach is in a message no request or
	// response holds: a mistake in wire.proto.
	ms := File_wire_proto.Messages()
	for i := range ms.Len() {
		fs := ms.Get(i).Fields()
		for j := range fs.Len() {
			if !checked[fs.Get(j).FullName()] {
				t.Errorf("%s was not checked", fs.Get(j).FullName())
			}
		}
	}
}

// sameType checks that f holds what Envoy's ef holds: the same scalar
// kind, a message checked field by field, bytes standing for a message
// decoded later, or an enum's varint.
func sameType(t *testing.T, where string, f, ef protoreflect.FieldDescriptor, walk func(ours, envoy protoreflect.MessageDescriptor)) {
	t.Helper()
	switch {
	case ef.Kind() == protoreflect.MessageKind && f.Kind() == protoreflect.MessageKind:
		walk(f.Message(), ef.Message())
	case ef.Kind() == protoreflect.MessageKind && f.Kind() == protoreflect.BytesKind:
		// Decoded later as the message: same bytes.
	case ef.Kind() == protoreflect.EnumKind && f.Kind() == protoreflect.Int32Kind:
		// An enum is a varint, as int32 is.
	case ef.Kind() == protoreflect.EnumKind && f.Kind() == protoreflect.EnumKind:
		ours, envoys := f.Enum().Values(), ef.Enum().Values()
		for i := range ours.Len() {
			v := ours.Get(i)
			if e := envoys.ByNumber(v.Number()); e == nil || e.Name() != v.Name() {
				t.Errorf("%s: enum value %s = %d is not Envoy's", where, v.Name(), v.Number())
			}
		}
	case f.Kind() != ef.Kind():
		t.Errorf("%s: kind %v, Envoy's %v", where, f.Kind(), ef.Kind())
	}
}

// randomRequest builds a CheckRequest as Envoy may send it, with the
// fields ssogate reads and many it skips.
func randomRequest(r *rand.Rand) *authv3.CheckRequest {
	str := func() string {
		const chars = "abcXYZ09-_ /:;=,.é日\t"
		rs := []rune(chars)
		var b strings.Builder
		for range r.IntN(40) {
			b.WriteRune(rs[r.IntN(len(rs))])
		}
		return b.String()
	}
	http := &authv3.AttributeContext_HttpRequest{
		Id: str(), Method: str(), Path: str(), Host: str(), Scheme: str(), Query: str(),
		Fragment: str(), Size: r.Int64(), Protocol: str(), Body: str(), RawBody: []byte(str()),
	}
	if r.IntN(4) > 0 {
		http.Headers = map[string]string{}
		for range r.IntN(30) {
			http.Headers[str()] = str()
		}
	}
	if r.IntN(3) == 0 {
		http.HeaderMap = &corev3.HeaderMap{}
		for range r.IntN(10) {
			hv := &corev3.HeaderValue{Key: str()}
			if r.IntN(2) == 0 {
				hv.Value = str()
			} else {
				hv.RawValue = []byte(str() + "\xff")
			}
			http.HeaderMap.Headers = append(http.HeaderMap.Headers, hv)
		}
	}
	ac := &authv3.AttributeContext{
		Source:            &authv3.AttributeContext_Peer{Principal: str(), Labels: map[string]string{str(): str()}},
		Destination:       &authv3.AttributeContext_Peer{Service: str()},
		Request:           &authv3.AttributeContext_Request{Time: timestamppb.Now(), Http: http},
		ContextExtensions: map[string]string{str(): str()},
		TlsSession:        &authv3.AttributeContext_TLSSession{Sni: str()},
		RouteMetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			"route": {Fields: map[string]*structpb.Value{"k": structpb.NewStringValue(str())}},
		}},
	}
	if r.IntN(2) == 0 {
		md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}, TypedFilterMetadata: map[string]*anypb.Any{
			"typed": {TypeUrl: "type.googleapis.com/x", Value: []byte(str())},
		}}
		for range r.IntN(4) {
			s, err := structpb.NewStruct(map[string]any{str(): map[string]any{"sub": str(), "exp": r.Float64()}, "n": float64(r.IntN(9))})
			if err != nil {
				panic(err)
			}
			md.FilterMetadata[str()] = s
		}
		ac.MetadataContext = md
	}
	return &authv3.CheckRequest{Attributes: ac}
}

// The decoded request holds what Envoy's message holds, field for field,
// whichever way it is decoded: UnmarshalVT, protobuf-go, or the Codec on a
// buffer split anywhere.
func TestDecodesAsEnvoy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		req := randomRequest(r)
		b, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var vt, pg, cd CheckRequest
		if err := vt.UnmarshalVT(b); err != nil {
			t.Fatalf("request %d: UnmarshalVT: %v", i, err)
		}
		if err := proto.Unmarshal(b, &pg); err != nil {
			t.Fatalf("request %d: proto.Unmarshal: %v", i, err)
		}
		cut := r.IntN(len(b) + 1)
		split := mem.BufferSlice{mem.SliceBuffer(b[:cut]), mem.SliceBuffer(b[cut:])}
		if err := (Codec{}).Unmarshal(split, &cd); err != nil {
			t.Fatalf("request %d: Codec: %v", i, err)
		}
		for name, got := range map[string]*CheckRequest{"UnmarshalVT": &vt, "proto.Unmarshal": &pg, "Codec": &cd} {
			if diff := compare(req, got); diff != "" {
				t.Fatalf("request %d, %s: %s", i, name, diff)
			}
		}
	}
}

// compare returns how got differs from what Envoy's want holds, or "".
func compare(want *authv3.CheckRequest, got *CheckRequest) string {
	wh, gh := want.GetAttributes().GetRequest().GetHttp(), got.GetAttributes().GetRequest().GetHttp()
	if wh.GetId() != gh.GetId() || wh.GetMethod() != gh.GetMethod() || wh.GetPath() != gh.GetPath() {
		return fmt.Sprintf("id, method, path %q %q %q, want %q %q %q", gh.GetId(), gh.GetMethod(), gh.GetPath(), wh.GetId(), wh.GetMethod(), wh.GetPath())
	}
	m := map[string]string{}
	for _, e := range gh.GetHeaders() {
		m[e.GetKey()] = e.GetValue()
	}
	if len(m) != len(wh.GetHeaders()) {
		return fmt.Sprintf("%d headers, want %d", len(m), len(wh.GetHeaders()))
	}
	for k, v := range wh.GetHeaders() {
		if m[k] != v {
			return fmt.Sprintf("header %q = %q, want %q", k, m[k], v)
		}
	}
	wl, gl := wh.GetHeaderMap().GetHeaders(), gh.GetHeaderMap().GetHeaders()
	if (wh.GetHeaderMap() == nil) != (gh.GetHeaderMap() == nil) || len(wl) != len(gl) {
		return fmt.Sprintf("header_map %v, want %v", gh.GetHeaderMap(), wh.GetHeaderMap())
	}
	for i := range wl {
		if wl[i].GetKey() != gl[i].GetKey() || wl[i].GetValue() != gl[i].GetValue() || string(wl[i].GetRawValue()) != string(gl[i].GetRawValue()) {
			return fmt.Sprintf("header_map[%d] %v, want %v", i, gl[i], wl[i])
		}
	}
	wm := want.GetAttributes().GetMetadataContext().GetFilterMetadata()
	gm := got.GetAttributes().GetMetadataContext().GetFilterMetadata()
	if len(wm) != len(gm) {
		return fmt.Sprintf("%d filter_metadata entries, want %d", len(gm), len(wm))
	}
	for _, e := range gm {
		var s structpb.Struct
		if err := proto.Unmarshal(bytes.Join(e.GetValue(), nil), &s); err != nil {
			return fmt.Sprintf("filter_metadata[%q]: %v", e.GetKey(), err)
		}
		if !proto.Equal(&s, wm[e.GetKey()]) {
			return fmt.Sprintf("filter_metadata[%q] = %v, want %v", e.GetKey(), &s, wm[e.GetKey()])
		}
	}
	return ""
}

// Messages without UnmarshalVT (the health service's) go to grpc-go's
// proto codec, and so does all encoding.
func TestCodecLeavesOtherMessages(t *testing.T) {
	in := &grpc_health_v1.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"}
	enc, err := (Codec{}).Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out grpc_health_v1.HealthCheckRequest
	if err := (Codec{}).Unmarshal(enc, &out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, &out) {
		t.Fatalf("got %v, want %v", &out, in)
	}
	if (Codec{}).Name() != "proto" {
		t.Errorf("name %q", (Codec{}).Name())
	}
}

func TestMalformedInputIsAnError(t *testing.T) {
	b, err := proto.Marshal(randomRequest(rand.New(rand.NewPCG(3, 4))))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]byte{b[:len(b)-1], {0x0a, 0x80}, {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, {0xff}} {
		var w CheckRequest
		if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(in)}, &w); err == nil {
			t.Errorf("% x: decoded without error", in[:min(len(in), 12)])
		}
	}
}

func TestValidUTF8(t *testing.T) {
	long := strings.Repeat("k", 100) + "\xff"
	for _, tc := range []struct {
		name string
		http *HttpRequest
		want string // part of the error; "" for none
	}{
		{"valid", &HttpRequest{Id: "é", Method: "GET", Path: "/日本", Headers: []*Header{{Key: "a", Value: "ü"}},
			HeaderMap: &HeaderMap{Headers: []*HeaderValue{{Key: "b", RawValue: []byte{0xff}}}}}, ""},
		{"empty", &HttpRequest{}, ""},
		{"id", &HttpRequest{Id: "\xff"}, "attributes.request.http.id"},
		{"method", &HttpRequest{Method: "G\xc3"}, "attributes.request.http.method"},
		{"path", &HttpRequest{Path: "/a\x80"}, "attributes.request.http.path"},
		{"header value", &HttpRequest{Headers: []*Header{{Key: "ok", Value: "x"}, {Key: "cookie", Value: "a=\xfe"}}}, `headers["cookie"]`},
		{"header name", &HttpRequest{Headers: []*Header{{Key: "x\xff", Value: "x"}}}, `headers["x\xff"]`},
		{"long header name", &HttpRequest{Headers: []*Header{{Key: long}}}, `headers["` + strings.Repeat("k", 64) + `"...`},
		{"header_map value", &HttpRequest{HeaderMap: &HeaderMap{Headers: []*HeaderValue{{Key: "accept", Value: "\xff"}}}}, `header_map header "accept"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.http.ValidUTF8()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// randomResponse builds a CheckResponse as ssogate may: an allow with
// headers to set and remove, or a denial.
func randomResponse(r *rand.Rand) *CheckResponse {
	str := func() string {
		rs := []rune("abcXYZ09-_ /:;=,.é日\"<>{}")
		var b strings.Builder
		n := r.IntN(60)
		if r.IntN(8) == 0 {
			n = 400 + r.IntN(1000) // a long login URL or body: over grpc-go's 1 KiB pooling threshold
		}
		for range n {
			b.WriteRune(rs[r.IntN(len(rs))])
		}
		return b.String()
	}
	headers := func() []*HeaderValueOption {
		var hs []*HeaderValueOption
		for range r.IntN(5) {
			hs = append(hs, &HeaderValueOption{Header: &HeaderValue{Key: str(), Value: str()}, AppendAction: HeaderAppendAction(r.IntN(4))})
		}
		return hs
	}
	if r.IntN(2) == 0 {
		ok := &OkHttpResponse{Headers: headers()}
		for range r.IntN(3) {
			ok.HeadersToRemove = append(ok.HeadersToRemove, str())
		}
		return &CheckResponse{Status: &Status{}, OkResponse: ok}
	}
	return &CheckResponse{Status: &Status{Code: int32(r.IntN(17))}, DeniedResponse: &DeniedHttpResponse{
		Status: &HttpStatus{Code: int32(100 + r.IntN(500))}, Headers: headers(), Body: str(),
	}}
}

// A response encodes as the go-control-plane message with the same fields
// would, and decodes into it field for field.
func TestResponsesEncodeAsEnvoy(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	pooled := 0
	for i := range 500 {
		resp := randomResponse(r)
		enc, err := (Codec{}).Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		b := enc.Materialize()
		enc.Free()
		if !mem.IsBelowBufferPoolingThreshold(len(b)) {
			pooled++
		}
		var got authv3.CheckResponse
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Fatalf("response %d: go-control-plane cannot decode it: %v", i, err)
		}
		want := &authv3.CheckResponse{Status: &rpcstatus.Status{Code: resp.GetStatus().GetCode()}}
		hs := func(in []*HeaderValueOption) []*corev3.HeaderValueOption {
			var out []*corev3.HeaderValueOption
			for _, h := range in {
				out = append(out, &corev3.HeaderValueOption{
					Header:       &corev3.HeaderValue{Key: h.GetHeader().GetKey(), Value: h.GetHeader().GetValue()},
					AppendAction: corev3.HeaderValueOption_HeaderAppendAction(h.GetAppendAction()),
				})
			}
			return out
		}
		if ok := resp.GetOkResponse(); ok != nil {
			want.HttpResponse = &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers: hs(ok.GetHeaders()), HeadersToRemove: ok.GetHeadersToRemove()}}
		} else {
			d := resp.GetDeniedResponse()
			want.HttpResponse = &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode(d.GetStatus().GetCode())}, Headers: hs(d.GetHeaders()), Body: d.GetBody()}}
		}
		if !proto.Equal(&got, want) {
			t.Fatalf("response %d decodes as %v, want %v", i, &got, want)
		}
		wantBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(wantBytes) {
			t.Fatalf("response %d: encoded % x, go-control-plane encodes % x", i, b, wantBytes)
		}
	}
	if pooled < 50 {
		t.Errorf("%d of 500 responses were encoded into grpc-go's pool, want 50 or more", pooled)
	}
}
