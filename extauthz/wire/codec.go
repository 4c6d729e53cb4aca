package wire

import (
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// Codec is a gRPC codec (grpc-go's encoding.CodecV2, named "proto", as
// the codec it stands in for) that decodes and encodes this package's
// messages with their generated UnmarshalVT and MarshalToSizedBufferVT,
// without reflection, and leaves every other message to grpc-go's own
// proto codec. Serve with it through grpc.ForceServerCodecV2(wire.Codec{}).
// Without it, grpc-go handles this package's messages through
// protobuf-go's reflection, slower and, for input no protobuf encoder
// writes, not always alike (below).
//
// UnmarshalVT copies every string and bytes field, and every field it does
// not know (kept as unknown bytes, not decoded: a request body Envoy sends
// with with_request_body is copied once), out of the received buffer, which
// goes back to grpc-go's pool when Unmarshal returns. Where it differs from
// protobuf-go: it does not check that strings are valid UTF-8 (callers
// check the fields they read: ValidUTF8); it refuses a known field number
// sent with another wire type, which protobuf-go keeps as unknown; and it
// reads a tag's field number as 32 bits, so a number of 2^32 or more, which
// protobuf-go refuses, may be read as a small one. Only a client that can
// write its own CheckRequest can send such bytes, and such a client can
// set any field directly: the CheckRequest is the trust boundary (Envoy's
// ext_authz cluster), not its encoding.
type Codec struct{}

// protoCodec is grpc-go's proto codec, found once: a Codec registered
// under its name later would otherwise call itself.
var protoCodec = encoding.GetCodecV2(protocodec.Name)

// Marshal implements encoding.CodecV2. Like grpc-go's proto codec, it
// encodes into a buffer of grpc-go's pool unless the message is small.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(interface {
		SizeVT() int
		MarshalToSizedBufferVT([]byte) (int, error)
	})
	if !ok {
		return protoCodec.Marshal(v)
	}
	size := m.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if _, err := m.MarshalToSizedBufferVT(buf); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := m.MarshalToSizedBufferVT(*buf); err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Unmarshal implements encoding.CodecV2. Errors are UnmarshalVT's for
// malformed input (io.ErrUnexpectedEOF, protohelpers' ErrInvalidLength or
// ErrIntOverflow, or an error naming an illegal tag or a wrong wire type)
// or, for other messages, grpc-go's proto codec's.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(interface{ UnmarshalVT([]byte) error })
	if !ok {
		return protoCodec.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return m.UnmarshalVT(buf.ReadOnlyData())
}

// Name implements encoding.CodecV2: "proto", the content-subtype gRPC
// clients such as Envoy send (application/grpc).
func (Codec) Name() string { return protocodec.Name }
