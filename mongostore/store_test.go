package mongostore_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionkit/sessions/mongostore"
)

// t0 is an arbitrary "now": the store compares against the caller's clock
// only, so tests use fixed instants.
var t0 = time.UnixMilli(1_750_000_000_000)

// offlineDB returns a database handle of a client that never connected:
// New does no I/O.
func offlineDB(t *testing.T) *mongo.Database {
	c, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1").SetServerSelectionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database("x")
}

func TestNewValidatesOptions(t *testing.T) {
	db := offlineDB(t)
	tests := []struct {
		name string
		db   *mongo.Database
		opts *mongostore.Options
		ok   bool
	}{
		{"nil options", db, nil, true},
		{"zero options", db, &mongostore.Options{}, true},
		{"custom", db, &mongostore.Options{Collection: "web.sessions-2", SweepBatch: 10, TTLDelay: 90 * time.Second, NoTTLIndex: true}, true},
		{"120-char collection", db, &mongostore.Options{Collection: strings.Repeat("c", 120)}, true},
		{"nil db", nil, nil, false},
		{"121-char collection", db, &mongostore.Options{Collection: strings.Repeat("c", 121)}, false},
		{"dollar", db, &mongostore.Options{Collection: "a$b"}, false},
		{"NUL", db, &mongostore.Options{Collection: "a\x00b"}, false},
		{"space", db, &mongostore.Options{Collection: "a b"}, false},
		{"leading dot", db, &mongostore.Options{Collection: ".sessions"}, false},
		{"leading digit", db, &mongostore.Options{Collection: "1sessions"}, false},
		{"system collection", db, &mongostore.Options{Collection: "system.sessions"}, false},
		{"non-ASCII", db, &mongostore.Options{Collection: "séssions"}, false},
		{"negative batch", db, &mongostore.Options{SweepBatch: -1}, false},
		{"negative TTL delay", db, &mongostore.Options{TTLDelay: -time.Second}, false},
		{"TTL delay beyond int32 seconds", db, &mongostore.Options{TTLDelay: 200 * 365 * 24 * time.Hour}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := mongostore.New(tt.db, tt.opts)
			if tt.ok {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v; want a store", s, err)
				}
				return
			}
			if !errors.Is(err, mongostore.ErrInvalidOptions) || s != nil {
				t.Fatalf("New = %v, %v; want nil and ErrInvalidOptions", s, err)
			}
			if !strings.HasPrefix(err.Error(), "mongostore: ") {
				t.Errorf("error %q lacks the mongostore: prefix", err)
			}
		})
	}
	s, err := mongostore.New(db, nil)
	if err != nil || s.Collection().Name() != mongostore.DefaultCollection || s.Collection().Database().Name() != "x" {
		t.Errorf("default collection = %v, %v", s.Collection().Name(), err)
	}
}

// indexes returns the collection's indexes by name.
func indexes(t *testing.T, coll *mongo.Collection) map[string]bson.M {
	t.Helper()
	ctx := context.Background()
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var all []bson.M
	if err := cur.All(ctx, &all); err != nil {
		t.Fatal(err)
	}
	byName := map[string]bson.M{}
	for _, ix := range all {
		byName[ix["name"].(string)] = ix
	}
	return byName
}

// countingHandler counts log records.
type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h *countingHandler) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h *countingHandler) WithGroup(string) slog.Handler             { return h }

// TestEnsureIndexes checks the indexes on either kind of server: a TTL
// index on expiry where the server has them (MongoDB), a plain one and one
// log record per Store where it answers NotImplemented (FerretDB).
func TestEnsureIndexes(t *testing.T) {
	t.Parallel()
	logs := &countingHandler{}
	s, coll := newStore(t, &mongostore.Options{Logger: slog.New(logs), TTLDelay: 90*time.Second + time.Millisecond})
	logged := logs.n.Load()
	for range 2 {
		if err := s.EnsureIndexes(context.Background()); err != nil {
			t.Fatalf("EnsureIndexes again: %v", err)
		}
	}
	ix := indexes(t, coll)
	for _, name := range []string{"_id_", mongostore.ExpiryIndex, mongostore.OwnerIndexName} {
		if _, ok := ix[name]; !ok {
			t.Errorf("index %s missing; have %v", name, ix)
		}
	}
	if key, _ := ix[mongostore.OwnerIndexName]["key"].(bson.D); len(key) != 1 || key[0].Key != "owner" {
		t.Errorf("owner index key = %v", ix[mongostore.OwnerIndexName]["key"])
	}
	ttl, hasTTL := ix[mongostore.ExpiryIndex]["expireAfterSeconds"]
	switch {
	case hasTTL:
		if n, _ := ttl.(int32); n != 91 {
			t.Errorf("expireAfterSeconds = %v, want 91 (90.001 s rounded up)", ttl)
		}
		if logged != 0 || logs.n.Load() != 0 {
			t.Errorf("logged %d records on a server with TTL indexes", logs.n.Load())
		}
	default:
		t.Log("the server has no TTL indexes (FerretDB): a plain expiry index")
		if logs.n.Load() != 1 {
			t.Errorf("logged %d records for the missing TTL index, want exactly 1 per Store", logs.n.Load())
		}
	}
}

func TestNoTTLIndex(t *testing.T) {
	t.Parallel()
	logs := &countingHandler{}
	_, coll := newStore(t, &mongostore.Options{NoTTLIndex: true, Logger: slog.New(logs)})
	ix := indexes(t, coll)
	if _, ok := ix[mongostore.ExpiryIndex]; !ok {
		t.Fatalf("no expiry index: %v", ix)
	}
	if _, ok := ix[mongostore.ExpiryIndex]["expireAfterSeconds"]; ok {
		t.Errorf("NoTTLIndex created a TTL index: %v", ix[mongostore.ExpiryIndex])
	}
	if logs.n.Load() != 0 {
		t.Errorf("NoTTLIndex logged %d records", logs.n.Load())
	}
}

func TestDocumentLayout(t *testing.T) {
	t.Parallel()
	s, coll := newStore(t, nil)
	ctx := context.Background()
	id, anon := testID(t, 1), testID(t, 2)
	expiry := t0.Add(time.Hour + 123456789*time.Nanosecond)
	if ok, err := s.Create(ctx, id, []byte{0, 1, 2}, expiry, "user-42", t0); err != nil || !ok {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	if ok, err := s.Create(ctx, anon, nil, expiry, "", t0); err != nil || !ok {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	raw, err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if v := raw.Lookup("_id"); v.Type != bson.TypeString || v.StringValue() != id {
		t.Errorf("_id = %v, want the hex id as a string", v)
	}
	if v := raw.Lookup("data"); v.Type != bson.TypeBinary {
		t.Errorf("data is %v, want binary", v.Type)
	} else if sub, b := v.Binary(); sub != 0 || !bytes.Equal(b, []byte{0, 1, 2}) {
		t.Errorf("data = %d %x", sub, b)
	}
	if v := raw.Lookup("version"); v.Type != bson.TypeInt64 || v.Int64() != 1 {
		t.Errorf("version = %v, want int64 1", v)
	}
	if v := raw.Lookup("expiry"); v.Type != bson.TypeDateTime || v.DateTime() != expiry.UnixMilli() {
		t.Errorf("expiry = %v, want the date %d", v, expiry.UnixMilli())
	}
	if v := raw.Lookup("owner"); v.StringValue() != "user-42" {
		t.Errorf("owner = %v", v)
	}
	raw, err = coll.FindOne(ctx, bson.D{{Key: "_id", Value: anon}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.LookupErr("owner"); err == nil {
		t.Errorf("the empty owner is stored: %v", raw)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	ctx := context.Background()
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	tests := []struct {
		name  string
		data  []byte
		owner string
	}{
		{"empty", []byte{}, ""},
		{"nil", nil, ""},
		{"text", []byte(`{"user":42}`), "user-42"},
		{"binary with NUL and invalid UTF-8", []byte{0, 0xff, 0xfe, 0, '\\', '\''}, "ünïcode owner"},
		{"operator-like owner", []byte(`{"$gt":""}`), `{"$gt": ""}`},
		{"4 MiB", big, "big"},
	}
	for i, tt := range tests {
		id := testID(t, i)
		expiry := t0.Add(time.Hour + 123456789*time.Nanosecond)
		created, err := s.Create(ctx, id, tt.data, expiry, tt.owner, t0)
		if err != nil || !created {
			t.Fatalf("%s: Create = %v, %v", tt.name, created, err)
		}
		data, version, gotExpiry, found, err := s.Load(ctx, id, t0)
		if err != nil || !found {
			t.Fatalf("%s: Load found=%v err=%v", tt.name, found, err)
		}
		if data == nil {
			t.Errorf("%s: Load returned nil data, want a non-nil slice", tt.name)
		}
		if !bytes.Equal(data, tt.data) {
			t.Errorf("%s: data differs (got %d bytes, want %d)", tt.name, len(data), len(tt.data))
		}
		if version != 1 {
			t.Errorf("%s: version = %d, want 1", tt.name, version)
		}
		if want := expiry.Truncate(time.Millisecond); !gotExpiry.Equal(want) {
			t.Errorf("%s: expiry = %v, want %v (millisecond precision)", tt.name, gotExpiry, want)
		}
		if tt.owner != "" {
			if ids, err := s.ListOwner(ctx, tt.owner, t0); err != nil || !slices.Equal(ids, []string{id}) {
				t.Errorf("%s: ListOwner = %v, %v", tt.name, ids, err)
			}
		}
		// The caller owns the returned slice.
		if len(data) > 0 {
			data[0]++
			again, _, _, _, err := s.Load(ctx, id, t0)
			if err != nil || !bytes.Equal(again, tt.data) {
				t.Errorf("%s: modifying a loaded slice changed the record", tt.name)
			}
		}
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	ctx := context.Background()
	id := testID(t, 1)

	if created, err := s.Create(ctx, id, []byte("first"), t0.Add(time.Minute), "alice", t0); err != nil || !created {
		t.Fatalf("Create = %v, %v; want true", created, err)
	}
	// A live record is never overwritten.
	if created, err := s.Create(ctx, id, []byte("second"), t0.Add(time.Hour), "mallory", t0); err != nil || created {
		t.Fatalf("Create over live record = %v, %v; want false, nil", created, err)
	}
	data, _, expiry, found, err := s.Load(ctx, id, t0)
	if err != nil || !found || string(data) != "first" || !expiry.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after refused Create: Load = %q, %v, %v, %v", data, expiry, found, err)
	}
	if ids, err := s.ListOwner(ctx, "mallory", t0); err != nil || len(ids) != 0 {
		t.Fatalf("refused Create indexed its owner: %v, %v", ids, err)
	}

	// Bump the version, then let the record expire: exactly at its expiry
	// it counts as absent and is replaced, with version 1 again.
	if updated, _, err := s.Update(ctx, id, 1, []byte("v2"), t0.Add(time.Minute), "alice", t0); err != nil || !updated {
		t.Fatalf("Update = %v, %v", updated, err)
	}
	later := t0.Add(time.Minute)
	if created, err := s.Create(ctx, id, []byte("third"), later.Add(time.Hour), "bob", later); err != nil || !created {
		t.Fatalf("Create over expired record = %v, %v; want true", created, err)
	}
	data, version, _, found, err := s.Load(ctx, id, later)
	if err != nil || !found || string(data) != "third" || version != 1 {
		t.Fatalf("replaced record: Load = %q, v%d, %v, %v; want third, v1", data, version, found, err)
	}
	if ids, _ := s.ListOwner(ctx, "alice", later); len(ids) != 0 {
		t.Errorf("old owner still lists the replaced record: %v", ids)
	}
	if ids, _ := s.ListOwner(ctx, "bob", later); !slices.Equal(ids, []string{id}) {
		t.Errorf("ListOwner(bob) = %v, want [%s]", ids, id)
	}
	// Replacing with no owner drops the old owner field.
	final := later.Add(2 * time.Hour)
	if created, err := s.Create(ctx, id, []byte("fourth"), final.Add(time.Hour), "", final); err != nil || !created {
		t.Fatalf("Create over expired record without owner = %v, %v", created, err)
	}
	if ids, _ := s.ListOwner(ctx, "bob", final); len(ids) != 0 {
		t.Errorf("the owner survived a replacement without one: %v", ids)
	}
}

// TestCreateRace races creators of one id, over an absent record and over
// an expired one: the filtered upsert lets exactly one win each time, and
// the losers see a duplicate key, reported as created == false.
func TestCreateRace(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	ctx := context.Background()
	const creators, rounds = 12, 6
	for round := range rounds {
		id := testID(t, round)
		now := t0.Add(time.Duration(round) * time.Hour)
		if round%2 == 1 {
			// An expired record with a high version to replace.
			if ok, err := s.Create(ctx, id, []byte("old"), now.Add(-time.Hour), "old", now.Add(-2*time.Hour)); err != nil || !ok {
				t.Fatal(ok, err)
			}
			if ok, _, err := s.Update(ctx, id, 1, []byte("old"), now, "old", now.Add(-2*time.Hour)); err != nil || !ok {
				t.Fatal(ok, err)
			}
		}
		var wins atomic.Int64
		var winner atomic.Int64
		var wg sync.WaitGroup
		for i := range creators {
			wg.Go(func() {
				ok, err := s.Create(ctx, id, []byte{byte(i)}, now.Add(time.Hour), "o", now)
				if err != nil {
					t.Errorf("round %d: Create: %v", round, err)
				}
				if ok {
					wins.Add(1)
					winner.Store(int64(i))
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d of %d racing Creates succeeded, want exactly 1", round, wins.Load(), creators)
		}
		data, version, _, found, err := s.Load(ctx, id, now)
		if err != nil || !found || version != 1 || !bytes.Equal(data, []byte{byte(winner.Load())}) {
			t.Fatalf("round %d: Load = %v v%d %v %v; want the winner's data at v1", round, data, version, found, err)
		}
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	s, coll := newStore(t, nil)
	ctx := context.Background()
	exp := t0.Add(time.Hour)

	type doc struct {
		Data    []byte        `bson:"data"`
		Version int64         `bson:"version"`
		Expiry  bson.DateTime `bson:"expiry"`
		Owner   *string       `bson:"owner"`
	}
	tests := []struct {
		name        string
		seed        bool
		seedExpiry  time.Time
		version     int64
		wantUpdated bool
		wantFound   bool
	}{
		{"matching version", true, exp, 1, true, true},
		{"stale version", true, exp, 7, false, true},
		{"older version", true, exp, 0, false, true},
		{"expired exactly now", true, t0, 1, false, false},
		{"expired before now", true, t0.Add(-time.Second), 1, false, false},
		{"absent", false, time.Time{}, 1, false, false},
	}
	for i, tt := range tests {
		id := testID(t, i)
		if tt.seed {
			if created, err := s.Create(ctx, id, []byte("old"), tt.seedExpiry, "o1", t0.Add(-time.Hour)); err != nil || !created {
				t.Fatalf("%s: seed: %v, %v", tt.name, created, err)
			}
		}
		updated, found, err := s.Update(ctx, id, tt.version, []byte("new"), t0.Add(2*time.Hour), "o2", t0)
		if err != nil || updated != tt.wantUpdated || found != tt.wantFound {
			t.Fatalf("%s: Update = %v, %v, %v; want %v, %v, nil", tt.name, updated, found, err, tt.wantUpdated, tt.wantFound)
		}
		var d doc
		err = coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
		if !tt.seed {
			if !errors.Is(err, mongo.ErrNoDocuments) {
				t.Errorf("%s: Update created a record (%v)", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if tt.wantUpdated {
			if string(d.Data) != "new" || d.Version != 2 || int64(d.Expiry) != t0.Add(2*time.Hour).UnixMilli() || d.Owner == nil || *d.Owner != "o2" {
				t.Errorf("%s: document = %+v; want new v2", tt.name, d)
			}
		} else if string(d.Data) != "old" || d.Version != 1 || int64(d.Expiry) != tt.seedExpiry.UnixMilli() || d.Owner == nil || *d.Owner != "o1" {
			t.Errorf("%s: failed Update wrote: %+v", tt.name, d)
		}
	}

	// Successive updates keep counting; the empty owner removes the field.
	id := testID(t, 100)
	if _, err := s.Create(ctx, id, nil, exp, "x", t0); err != nil {
		t.Fatal(err)
	}
	for v := int64(1); v <= 3; v++ {
		if updated, found, err := s.Update(ctx, id, v, []byte{byte(v)}, exp, "", t0); err != nil || !updated || !found {
			t.Fatalf("update from v%d = %v, %v, %v", v, updated, found, err)
		}
	}
	data, version, _, _, _ := s.Load(ctx, id, t0)
	if version != 4 || !bytes.Equal(data, []byte{3}) {
		t.Errorf("after 3 updates: v%d %v; want v4 [3]", version, data)
	}
	var d doc
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil || d.Owner != nil {
		t.Errorf("empty owner stored as %v (%v), want no field", d.Owner, err)
	}
}

// TestRetireWithEpochExpiry is how the Manager retires the old record of a
// renewed session: an Update to an expiry 1 ms after the Unix epoch. The
// version check applies, the update reports success, and afterwards the
// record behaves as absent everywhere.
func TestRetireWithEpochExpiry(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	ctx := context.Background()
	now := time.Now()
	id := testID(t, 1)
	retired := time.UnixMilli(1)
	if ok, err := s.Create(ctx, id, []byte("session"), now.Add(time.Hour), "alice", now); err != nil || !ok {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	if updated, found, err := s.Update(ctx, id, 7, []byte("session"), retired, "", now); err != nil || updated || !found {
		t.Fatalf("retire with a stale version = %v, %v, %v; want false, true (changed)", updated, found, err)
	}
	if updated, found, err := s.Update(ctx, id, 1, []byte("session"), retired, "", now); err != nil || !updated || !found {
		t.Fatalf("retire = %v, %v, %v; want true, true", updated, found, err)
	}
	if _, _, _, found, err := s.Load(ctx, id, now); found || err != nil {
		t.Errorf("Load after retire: found=%v err=%v; want not found", found, err)
	}
	if found, err := s.Touch(ctx, id, now.Add(2*time.Hour), now); found || err != nil {
		t.Errorf("Touch after retire = %v, %v; want false", found, err)
	}
	if updated, found, err := s.Update(ctx, id, 2, []byte("x"), now.Add(time.Hour), "alice", now); updated || found || err != nil {
		t.Errorf("Update after retire = %v, %v, %v; want gone", updated, found, err)
	}
	if ids, err := s.ListOwner(ctx, "alice", now); err != nil || len(ids) != 0 {
		t.Errorf("ListOwner after retire = %v, %v; want empty", ids, err)
	}
	if n, err := s.DeleteOwner(ctx, "alice", now); err != nil || n != 0 {
		t.Errorf("DeleteOwner after retire = %d, %v; want 0 live", n, err)
	}
	if ok, err := s.Create(ctx, id, []byte("again"), now.Add(time.Hour), "", now); err != nil || !ok {
		t.Errorf("Create after retire = %v, %v; want true", ok, err)
	}
	if data, v, _, found, err := s.Load(ctx, id, now); !found || err != nil || string(data) != "again" || v != 1 {
		t.Errorf("Load after re-create = %q v%d %v %v", data, v, found, err)
	}
	// A retired record is also what a sweep removes.
	if ok, _, err := s.Update(ctx, id, 1, nil, retired, "", now); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if n, err := s.DeleteExpired(ctx, now); err != nil || n != 1 {
		t.Errorf("DeleteExpired after retire = %d, %v; want 1", n, err)
	}
}

func TestTouch(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	ctx := context.Background()
	id := testID(t, 1)
	exp := t0.Add(time.Hour)
	if _, err := s.Create(ctx, id, []byte("d"), exp, "o", t0); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name       string
		expiry     time.Time
		now        time.Time
		wantFound  bool
		wantExpiry time.Time
	}{
		{"later", exp.Add(time.Hour), t0, true, exp.Add(time.Hour)},
		{"earlier is ignored", exp, t0, true, exp.Add(time.Hour)},
		{"same is found", exp.Add(time.Hour), t0, true, exp.Add(time.Hour)},
		{"expired at now", exp.Add(3 * time.Hour), exp.Add(time.Hour), false, exp.Add(time.Hour)},
	}
	for _, st := range steps {
		found, err := s.Touch(ctx, id, st.expiry, st.now)
		if err != nil || found != st.wantFound {
			t.Fatalf("%s: Touch = %v, %v; want %v", st.name, found, err, st.wantFound)
		}
		data, version, expiry, ok, err := s.Load(ctx, id, t0)
		if err != nil || !ok || string(data) != "d" || version != 1 || !expiry.Equal(st.wantExpiry) {
			t.Fatalf("%s: Load = %q v%d %v %v %v; want d v1 %v", st.name, data, version, expiry, ok, err, st.wantExpiry)
		}
	}
	if found, err := s.Touch(ctx, testID(t, 2), exp, t0); err != nil || found {
		t.Errorf("Touch(absent) = %v, %v; want false, nil", found, err)
	}
	if _, _, _, found, _ := s.Load(ctx, testID(t, 2), t0); found {
		t.Error("Touch created a record")
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	ctx := context.Background()
	id := testID(t, 1)
	if _, err := s.Create(ctx, id, []byte("d"), t0.Add(time.Hour), "o", t0); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if _, _, _, found, err := s.Load(ctx, id, t0); found || err != nil {
		t.Errorf("after Delete: found=%v err=%v", found, err)
	}
	if ids, _ := s.ListOwner(ctx, "o", t0); len(ids) != 0 {
		t.Errorf("ListOwner after Delete = %v", ids)
	}
}

func TestMalformedIDs(t *testing.T) {
	t.Parallel()
	s, coll := newStore(t, nil)
	ctx := context.Background()
	good := testID(t, 1)
	if _, err := s.Create(ctx, good, []byte("d"), t0.Add(time.Hour), "", t0); err != nil {
		t.Fatal(err)
	}
	bad := []string{
		"",
		"abc",
		strings.ToUpper(good), // would alias good if accepted
		good[:63],
		good + "0",
		good[:62] + "zz",
		good[:62] + "$1",
		`{"$ne": null}`,
		strings.Repeat("é", 32),
	}
	for _, id := range bad {
		if created, err := s.Create(ctx, id, []byte("x"), t0.Add(time.Hour), "", t0); !errors.Is(err, mongostore.ErrInvalidID) || created {
			t.Errorf("Create(%q) = %v, %v; want ErrInvalidID", id, created, err)
		}
		if _, _, _, found, err := s.Load(ctx, id, t0); found || err != nil {
			t.Errorf("Load(%q) = %v, %v; want not found", id, found, err)
		}
		if updated, found, err := s.Update(ctx, id, 1, []byte("x"), t0.Add(time.Hour), "", t0); updated || found || err != nil {
			t.Errorf("Update(%q) = %v, %v, %v; want gone", id, updated, found, err)
		}
		if found, err := s.Touch(ctx, id, t0.Add(2*time.Hour), t0); found || err != nil {
			t.Errorf("Touch(%q) = %v, %v; want not found", id, found, err)
		}
		if err := s.Delete(ctx, id); err != nil {
			t.Errorf("Delete(%q) = %v", id, err)
		}
	}
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Errorf("documents = %d, %v; want only the well-formed one", n, err)
	}
	data, version, _, found, err := s.Load(ctx, good, t0)
	if !found || err != nil || string(data) != "d" || version != 1 {
		t.Errorf("the well-formed record changed: %q v%d %v %v", data, version, found, err)
	}
}

// TestInvalidUTF8Owner: BSON strings are UTF-8, so an owner that is not is
// refused rather than stored in a form ListOwner would never match.
func TestInvalidUTF8Owner(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	ctx := context.Background()
	id, owner := testID(t, 1), "user-\xff"
	if ok, err := s.Create(ctx, id, nil, t0.Add(time.Hour), owner, t0); !errors.Is(err, mongostore.ErrInvalidOwner) || ok {
		t.Errorf("Create = %v, %v; want ErrInvalidOwner", ok, err)
	}
	if _, _, _, found, _ := s.Load(ctx, id, t0); found {
		t.Error("a refused Create stored the record")
	}
	if ok, err := s.Create(ctx, id, nil, t0.Add(time.Hour), "user", t0); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, found, err := s.Update(ctx, id, 1, nil, t0.Add(time.Hour), owner, t0); !errors.Is(err, mongostore.ErrInvalidOwner) || ok || found {
		t.Errorf("Update = %v, %v, %v; want ErrInvalidOwner", ok, found, err)
	}
	if ids, err := s.ListOwner(ctx, owner, t0); err != nil || len(ids) != 0 || ids == nil {
		t.Errorf("ListOwner = %#v, %v; want an empty list", ids, err)
	}
	if n, err := s.DeleteOwner(ctx, owner, t0); err != nil || n != 0 {
		t.Errorf("DeleteOwner = %d, %v", n, err)
	}
	if _, v, _, found, _ := s.Load(ctx, id, t0); !found || v != 1 {
		t.Errorf("the record changed: v%d %v", v, found)
	}
}

// TestForeignDocuments: documents another program put in the collection
// (an ObjectID _id, no expiry) neither break nor leak into the store's
// listings.
func TestForeignDocuments(t *testing.T) {
	t.Parallel()
	s, coll := newStore(t, nil)
	ctx := context.Background()
	if _, err := coll.InsertMany(ctx, []any{
		bson.D{{Key: "owner", Value: "alice"}, {Key: "expiry", Value: bson.NewDateTimeFromTime(t0.Add(time.Hour))}},
		bson.D{{Key: "owner", Value: "alice"}, {Key: "expiry", Value: bson.NewDateTimeFromTime(t0.Add(-time.Hour))}},
		bson.D{{Key: "_id", Value: "not-a-session"}, {Key: "owner", Value: "bob"}},
	}); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.ListOwner(ctx, "alice", t0); err != nil || len(ids) != 0 {
		t.Errorf("ListOwner = %v, %v; want nothing listed", ids, err)
	}
	if _, err := s.DeleteExpired(ctx, t0); err != nil {
		t.Errorf("DeleteExpired: %v", err)
	}
}

// commandCounter counts the commands a client sends, by name.
type commandCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *commandCounter) started(_ context.Context, e *event.CommandStartedEvent) {
	c.mu.Lock()
	c.n[e.CommandName]++
	c.mu.Unlock()
}

func (c *commandCounter) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

func TestDeleteExpiredInBatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expired, live, batch int
		wantDeletes          int
	}{
		{expired: 10, live: 4, batch: 3, wantDeletes: 4}, // 3+3+3+1
		{expired: 9, live: 2, batch: 3, wantDeletes: 3},  // 3+3+3, then a find that comes back empty
		{expired: 0, live: 3, batch: 3, wantDeletes: 0},
		{expired: 5, live: 1, batch: 0, wantDeletes: 1}, // default 1000
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			testClient(t)
			counter := &commandCounter{n: map[string]int{}}
			c, err := mongo.Connect(options.Client().ApplyURI(testURI()).SetMonitor(&event.CommandMonitor{Started: counter.started}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Disconnect(context.Background()) }) // after the collection's drop
			s, err := mongostore.New(c.Database(testDB), &mongostore.Options{
				Collection: testCollection(t, c), SweepBatch: tt.batch, Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := s.EnsureIndexes(ctx); err != nil {
				t.Fatal(err)
			}
			now := t0
			var liveIDs []string
			for i := range tt.expired + tt.live {
				exp := now.Add(-time.Duration(i+1) * time.Second)
				if i == 0 {
					exp = now // expiry == now is expired
				}
				if i >= tt.expired {
					exp = now.Add(time.Millisecond + time.Duration(i)*time.Second)
					liveIDs = append(liveIDs, testID(t, i))
				}
				if _, err := s.Create(ctx, testID(t, i), []byte("d"), exp, "o", now.Add(-time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			before := counter.count("delete")
			n, err := s.DeleteExpired(ctx, now)
			if err != nil || n != tt.expired {
				t.Fatalf("DeleteExpired = %d, %v; want %d", n, err, tt.expired)
			}
			if got := counter.count("delete") - before; got != tt.wantDeletes {
				t.Errorf("DeleteExpired sent %d delete commands, want %d", got, tt.wantDeletes)
			}
			ids, err := s.ListOwner(ctx, "o", now)
			slices.Sort(ids)
			slices.Sort(liveIDs)
			if err != nil || !slices.Equal(ids, liveIDs) {
				t.Errorf("live records after sweep = %v, %v; want %v", ids, err, liveIDs)
			}
			if n, err := s.DeleteExpired(ctx, now); n != 0 || err != nil {
				t.Errorf("second sweep = %d, %v; want 0", n, err)
			}
		})
	}
}

func TestOwnerIndex(t *testing.T) {
	t.Parallel()
	s, coll := newStore(t, nil)
	ctx := context.Background()
	live, dead := t0.Add(time.Hour), t0.Add(-time.Hour)
	records := []struct {
		owner  string
		expiry time.Time
	}{
		{"alice", live}, {"alice", live}, {"alice", dead}, {"Alice", live}, {"alice ", live}, {"", live}, {"bob", live},
	}
	for i, r := range records {
		if _, err := s.Create(ctx, testID(t, i), nil, r.expiry, r.owner, t0.Add(-2*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	list := func(owner string) []string {
		t.Helper()
		ids, err := s.ListOwner(ctx, owner, t0)
		if err != nil {
			t.Fatalf("ListOwner(%q): %v", owner, err)
		}
		if ids == nil {
			t.Fatalf("ListOwner(%q) returned nil, want a non-nil slice", owner)
		}
		slices.Sort(ids)
		return ids
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	for owner, want := range map[string][]string{
		"alice":  sorted(testID(t, 0), testID(t, 1)),
		"Alice":  {testID(t, 3)}, // case-sensitive
		"alice ": {testID(t, 4)}, // trailing space is significant
		"":       {},
		"carol":  {},
	} {
		if got := list(owner); !slices.Equal(got, want) {
			t.Errorf("ListOwner(%q) = %v, want %v", owner, got, want)
		}
	}

	// Update moves a record between owners; the empty owner unindexes it.
	if ok, _, err := s.Update(ctx, testID(t, 1), 1, nil, live, "bob", t0); err != nil || !ok {
		t.Fatalf("Update owner: %v, %v", ok, err)
	}
	if ok, _, err := s.Update(ctx, testID(t, 6), 1, nil, live, "", t0); err != nil || !ok {
		t.Fatalf("Update owner: %v, %v", ok, err)
	}
	if got := list("bob"); !slices.Equal(got, []string{testID(t, 1)}) {
		t.Errorf("ListOwner(bob) after updates = %v", got)
	}

	if n, err := s.DeleteOwner(ctx, "alice", t0); err != nil || n != 1 {
		t.Fatalf("DeleteOwner(alice) = %d, %v; want 1 (one live, one expired)", n, err)
	}
	if left, err := coll.CountDocuments(ctx, bson.D{{Key: "owner", Value: "alice"}}); err != nil || left != 0 {
		t.Errorf("alice documents left = %d, %v; want 0 (expired ones too)", left, err)
	}
	if got := list("Alice"); len(got) != 1 {
		t.Errorf("DeleteOwner(alice) touched Alice: %v", got)
	}
	for _, owner := range []string{"", "nobody"} {
		if n, err := s.DeleteOwner(ctx, owner, t0); err != nil || n != 0 {
			t.Errorf("DeleteOwner(%q) = %d, %v; want 0", owner, n, err)
		}
	}
	if _, _, _, found, _ := s.Load(ctx, testID(t, 5), t0); !found {
		t.Error("DeleteOwner(\"\") removed an unowned record")
	}
}

// TestStressOneID mixes every operation on one id from many goroutines and
// checks the invariants a compare-and-set store keeps: versions only grow,
// each version is written by exactly one successful Update, and Touch never
// moves the expiry back.
func TestStressOneID(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	ctx := context.Background()
	id := testID(t, 1)
	now := t0
	if ok, err := s.Create(ctx, id, []byte("0"), now.Add(time.Hour), "o", now); err != nil || !ok {
		t.Fatal(ok, err)
	}
	const workers, perWorker = 8, 25
	var (
		mu      sync.Mutex
		written = map[int64]int{} // version -> successful updates producing it
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				switch (w + i) % 4 {
				case 0, 1:
					for {
						data, v, _, found, err := s.Load(ctx, id, now)
						if err != nil || !found {
							t.Errorf("Load = %v, %v", found, err)
							return
						}
						_ = data
						ok, found, err := s.Update(ctx, id, v, []byte{byte(w)}, now.Add(time.Hour), "o", now)
						if err != nil || !found {
							t.Errorf("Update = %v, %v, %v", ok, found, err)
							return
						}
						if ok {
							mu.Lock()
							written[v+1]++
							mu.Unlock()
							break
						}
					}
				case 2:
					if found, err := s.Touch(ctx, id, now.Add(time.Hour+time.Duration(i)*time.Millisecond), now); err != nil || !found {
						t.Errorf("Touch = %v, %v", found, err)
					}
				case 3:
					if ok, err := s.Create(ctx, id, []byte("x"), now.Add(time.Hour), "", now); err != nil || ok {
						t.Errorf("Create over a live record = %v, %v", ok, err)
					}
				}
			}
		})
	}
	wg.Wait()
	_, version, expiry, found, err := s.Load(ctx, id, now)
	if err != nil || !found {
		t.Fatal(found, err)
	}
	if int(version-1) != len(written) {
		t.Errorf("final version %d after %d successful updates", version, len(written))
	}
	for v, n := range written {
		if n != 1 {
			t.Errorf("version %d was written by %d successful updates, want 1", v, n)
		}
	}
	if expiry.Before(now.Add(time.Hour)) {
		t.Errorf("expiry moved back to %v", expiry)
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	id := testID(t, 1)
	now := t0
	for name, call := range storeCalls(s, id, now) {
		err := call(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v; want an error wrapping context.Canceled", name, err)
		} else if !strings.HasPrefix(err.Error(), "mongostore: ") {
			t.Errorf("%s error %q lacks the mongostore: prefix", name, err)
		}
	}
}

// storeCalls returns every store method that does I/O, as a call with the
// given context.
func storeCalls(s *mongostore.Store, id string, now time.Time) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"Create": func(ctx context.Context) error {
			_, err := s.Create(ctx, id, nil, now.Add(time.Hour), "", now)
			return err
		},
		"Load":   func(ctx context.Context) error { _, _, _, _, err := s.Load(ctx, id, now); return err },
		"Update": func(ctx context.Context) error { _, _, err := s.Update(ctx, id, 1, nil, now, "", now); return err },
		"Touch":  func(ctx context.Context) error { _, err := s.Touch(ctx, id, now, now); return err },
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, id) },
		"DeleteExpired": func(ctx context.Context) error {
			_, err := s.DeleteExpired(ctx, now)
			return err
		},
		"ListOwner":     func(ctx context.Context) error { _, err := s.ListOwner(ctx, "o", now); return err },
		"DeleteOwner":   func(ctx context.Context) error { _, err := s.DeleteOwner(ctx, "o", now); return err },
		"EnsureIndexes": func(ctx context.Context) error { return s.EnsureIndexes(ctx) },
	}
}

// TestUnreachableServer: with nothing listening, every call fails within
// the context's deadline with a mongostore: error, never a hang or a
// "not found".
func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	s, err := mongostore.New(offlineDB(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range storeCalls(s, testID(t, 1), t0) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		err := call(ctx)
		cancel()
		if err == nil || !strings.HasPrefix(err.Error(), "mongostore: ") {
			t.Errorf("%s = %v; want a mongostore: error", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %v to fail", name, d)
		}
	}
}
