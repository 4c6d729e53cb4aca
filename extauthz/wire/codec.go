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
// protobuf-go's reflection: the same bytes, slower.
//
// UnmarshalVT copies every string and bytes field out of the received
// buffer, which goes back to grpc-go's pool when Unmarshal returns. It does
// not check that strings are valid UTF-8, as protobuf-go does; callers
// that need valid UTF-8 check the fields they read (ValidUTF8).
type Codec struct{}

// Marshal implements encoding.CodecV2. Like grpc-go's proto codec, it
// encodes into a buffer of grpc-go's pool unless the message is small.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(interface {
		SizeVT() int
		MarshalToSizedBufferVT([]byte) (int, error)
	})
	if !ok {
		return encoding.GetCodecV2(protocodec.Name).Marshal(v)
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

// Unmarshal implements encoding.CodecV2. Errors are UnmarshalVT's (an
// io.ErrUnexpectedEOF or protohelpers error for malformed input) or, for
// other messages, grpc-go's proto codec's.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(interface{ UnmarshalVT([]byte) error })
	if !ok {
		return encoding.GetCodecV2(protocodec.Name).Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return m.UnmarshalVT(buf.ReadOnlyData())
}

// Name implements encoding.CodecV2: "proto", the content-subtype gRPC
// clients such as Envoy send (application/grpc).
func (Codec) Name() string { return protocodec.Name }
