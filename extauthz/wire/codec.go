package wire

import (
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// Codec is a gRPC codec (grpc-go's encoding.CodecV2, named "proto", as
// the codec it stands in for) that decodes this package's messages with
// their generated UnmarshalVT, without reflection, and leaves every other
// message, and all encoding, to grpc-go's own proto codec. Serve with it
// through grpc.ForceServerCodecV2(wire.Codec{}). Without it, grpc-go
// decodes this package's messages through protobuf-go's reflection: the
// same result, slower.
//
// UnmarshalVT copies every string and bytes field out of the received
// buffer, which goes back to grpc-go's pool when Unmarshal returns. It does
// not check that strings are valid UTF-8, as protobuf-go does; callers
// that need valid UTF-8 check the fields they read (ValidUTF8).
type Codec struct{}

// Marshal implements encoding.CodecV2 with grpc-go's proto codec.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2(protocodec.Name).Marshal(v)
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
