package main

import (
	"context"
	"io"
	"log/slog"
	"time"

	"go.uber.org/zap/zapcore"
)

// Buffering of serve's log. At level info serve writes one decision record
// per Check; a write(2) per record, made under slog's handler lock by every
// Check goroutine at once, cost more CPU than the record itself
// (docs/performance.md). serve's log therefore goes through a buffer.
const (
	// logBufferSize is the buffer in front of serve's log output, in bytes;
	// a full buffer is written at once.
	logBufferSize = 256 << 10
	// logFlushInterval is the longest an info record waits in the buffer.
	logFlushInterval = 200 * time.Millisecond
)

// newServeLogger is newLogger writing to w through a buffer of
// logBufferSize bytes, flushed every logFlushInterval, at once after any
// record at warn or above (errors, and 503 decisions, are never held back),
// and by the returned close function, which serve calls before it exits.
// Errors are those of newLogger (an unknown level).
func newServeLogger(w io.Writer, level string) (*slog.Logger, func() error, error) {
	buf := &zapcore.BufferedWriteSyncer{
		// Hide w's Sync (os.File's is fsync): a flush only writes.
		WS:            zapcore.AddSync(struct{ io.Writer }{w}),
		Size:          logBufferSize,
		FlushInterval: logFlushInterval,
	}
	l, err := newLogger(buf, level)
	if err != nil {
		return nil, nil, err
	}
	return slog.New(&flushingHandler{Handler: l.Handler(), sync: buf.Sync}), buf.Stop, nil
}

// flushingHandler flushes the buffer after each record at warn or above.
type flushingHandler struct {
	slog.Handler
	sync func() error
}

func (h *flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if serr := h.sync(); err == nil {
			err = serr
		}
	}
	return err
}

func (h *flushingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &flushingHandler{Handler: h.Handler.WithAttrs(as), sync: h.sync}
}

func (h *flushingHandler) WithGroup(name string) slog.Handler {
	return &flushingHandler{Handler: h.Handler.WithGroup(name), sync: h.sync}
}
