package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestWriteQueueHonoursContext holds the Store's write queue, as a long
// write would, and checks that every writing method gives up with its
// context's error instead of waiting, while reads go on.
func TestWriteQueueHonoursContext(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "queue.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	if err := s.CreateTable(bg); err != nil {
		t.Fatal(err)
	}
	const id = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	now := time.UnixMilli(1_750_000_000_000)
	if ok, err := s.Create(bg, id, []byte("d"), now.Add(time.Hour), "o", now); !ok || err != nil {
		t.Fatal(ok, err)
	}

	s.writes <- struct{}{} // a write in progress
	ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
	defer cancel()
	writes := map[string]func() error{
		"Create": func() error {
			_, err := s.Create(ctx, id[:63]+"0", []byte("x"), now.Add(time.Hour), "", now)
			return err
		},
		"Update": func() error {
			_, _, err := s.Update(ctx, id, 1, []byte("x"), now.Add(time.Hour), "", now)
			return err
		},
		"Touch": func() error {
			_, err := s.Touch(ctx, id, now.Add(2*time.Hour), now)
			return err
		},
		"Delete": func() error { return s.Delete(ctx, id) },
		"DeleteExpired": func() error {
			_, err := s.DeleteExpired(ctx, now)
			return err
		},
		"DeleteOwner": func() error {
			_, err := s.DeleteOwner(ctx, "o", now)
			return err
		},
	}
	for name, write := range writes {
		if err := write(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s while the write queue is held: error = %v, want a wrapped context.DeadlineExceeded", name, err)
		}
	}
	// Reads do not queue.
	if data, _, _, found, err := s.Load(bg, id, now); !found || err != nil || string(data) != "d" {
		t.Errorf("Load while the write queue is held = %q, %v, %v", data, found, err)
	}
	<-s.writes
	if found, err := s.Touch(bg, id, now.Add(2*time.Hour), now); !found || err != nil {
		t.Errorf("Touch after the queue is free = %v, %v", found, err)
	}
}
