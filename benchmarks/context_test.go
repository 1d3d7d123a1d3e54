package benchmarks

import (
	"context"
	"testing"
	"time"
)

// BenchmarkStoreCallContext prices what a library spends per store call on
// bounding it with a deadline, the way sessionkit's Manager bounds every
// call by Options.StoreTimeout (5 s by default). The parent is a request
// context as net/http's server makes it (cancelable). "done" variants call
// Done, as network drivers do (pgx watches it with a goroutine per query,
// go-redis selects on it), which is what makes the timer real.
func BenchmarkStoreCallContext(b *testing.B) {
	conn, stop := context.WithCancel(context.Background())
	defer stop()
	b.Run("parent-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithCancel(conn)
			_ = ctx.Done()
			cancel()
		}
	})
	b.Run("with-timeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithCancel(conn)
			sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
			_ = sctx.Err()
			scancel()
			cancel()
		}
	})
	b.Run("with-timeout-done", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithCancel(conn)
			sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
			_ = sctx.Done()
			scancel()
			cancel()
		}
	})
	b.Run("two-timeouts-done", func(b *testing.B) {
		// The Manager's deadline, then a store's own (redisstore adds
		// Options.Timeout on top).
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithCancel(conn)
			sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
			s2, cancel2 := context.WithTimeout(sctx, 3*time.Second)
			_ = s2.Done()
			cancel2()
			scancel()
			cancel()
		}
	})
}
