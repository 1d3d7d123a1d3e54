package dynamostore_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sessionkit/sessions/dynamostore"
)

// t0 is an arbitrary "now": the store compares against the caller's clock
// only, so tests use fixed instants.
var t0 = time.UnixMilli(1_750_000_000_000)

// items returns every item of the table whose pk starts with prefix.
func items(t *testing.T, c *dynamodb.Client, table, prefix string) []map[string]types.AttributeValue {
	t.Helper()
	var out []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: &table, ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		for _, it := range page.Items {
			if strings.HasPrefix(attrS(it["pk"]), prefix) {
				out = append(out, it)
			}
		}
	}
	return out
}

func attrS(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func attrN(v types.AttributeValue) int64 {
	if n, ok := v.(*types.AttributeValueMemberN); ok {
		i, _ := strconv.ParseInt(n.Value, 10, 64)
		return i
	}
	return -1
}

// record returns the raw record item of id, or nil.
func record(t *testing.T, c *dynamodb.Client, table, id string) map[string]types.AttributeValue {
	t.Helper()
	out, err := c.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: &table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "s#" + id},
			"sk": &types.AttributeValueMemberS{Value: "s"},
		},
	})
	if err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	return out.Item
}

func TestNewValidatesOptions(t *testing.T) {
	var api dynamostore.API = (*dynamodb.Client)(nil) // New does no I/O
	tests := []struct {
		name string
		api  dynamostore.API
		opts *dynamostore.Options
		ok   bool
	}{
		{"nil options", api, nil, true},
		{"zero options", api, &dynamostore.Options{}, true},
		{"custom", api, &dynamostore.Options{Table: "My-Sessions.v2_x", SweepBatch: 1000, TTLMargin: time.Minute}, true},
		{"255-char table", api, &dynamostore.Options{Table: strings.Repeat("t", 255)}, true},
		{"3-char table", api, &dynamostore.Options{Table: "abc"}, true},
		{"nil api", nil, nil, false},
		{"2-char table", api, &dynamostore.Options{Table: "ab"}, false},
		{"256-char table", api, &dynamostore.Options{Table: strings.Repeat("t", 256)}, false},
		{"table with space", api, &dynamostore.Options{Table: "a b"}, false},
		{"table with slash", api, &dynamostore.Options{Table: "a/b"}, false},
		{"table with colon", api, &dynamostore.Options{Table: "arn:aws"}, false},
		{"non-ASCII table", api, &dynamostore.Options{Table: "séssions"}, false},
		{"negative batch", api, &dynamostore.Options{SweepBatch: -1}, false},
		{"batch above 1000", api, &dynamostore.Options{SweepBatch: 1001}, false},
		{"negative margin", api, &dynamostore.Options{TTLMargin: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := dynamostore.New(tt.api, tt.opts)
			if tt.ok {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v; want a store", s, err)
				}
				return
			}
			if !errors.Is(err, dynamostore.ErrInvalidOptions) || s != nil {
				t.Fatalf("New = %v, %v; want nil and ErrInvalidOptions", s, err)
			}
			if !strings.HasPrefix(err.Error(), "dynamostore: ") {
				t.Errorf("error %q lacks the dynamostore: prefix", err)
			}
		})
	}
}

func TestCreateTable(t *testing.T) {
	t.Parallel()
	s, c, table := newStore(t, nil)
	ctx := context.Background()
	if err := s.CreateTable(ctx); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Table
	if d.TableStatus != types.TableStatusActive || len(d.GlobalSecondaryIndexes) != 1 ||
		aws.ToString(d.GlobalSecondaryIndexes[0].IndexName) != dynamostore.ExpiryIndex ||
		d.GlobalSecondaryIndexes[0].Projection.ProjectionType != types.ProjectionTypeKeysOnly {
		t.Errorf("table = %+v; want ACTIVE with a keys-only %s", d, dynamostore.ExpiryIndex)
	}
}

// TestCreateTableConcurrently starts many CreateTable calls on one new
// table at once, as application instances starting together do.
func TestCreateTableConcurrently(t *testing.T) {
	t.Parallel()
	c := testClient(t)
	table := testTable(t, c)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			s, err := dynamostore.New(c, &dynamostore.Options{Table: table})
			if err == nil {
				err = s.CreateTable(context.Background())
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent CreateTable: %v", err)
		}
	}
}

// TestCreateTableForeignSchema: a table of the name with other keys is
// reported, not used.
func TestCreateTableForeignSchema(t *testing.T) {
	t.Parallel()
	c := testClient(t)
	table := testTable(t, c)
	ctx := context.Background()
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            &table,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := dynamostore.New(c, &dynamostore.Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(ctx); !errors.Is(err, dynamostore.ErrTableSchema) {
		t.Fatalf("CreateTable over a foreign table = %v; want ErrTableSchema", err)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s, c, table := newStore(t, nil)
	ctx := context.Background()
	big := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + i>>10)
		}
		return b
	}
	tests := []struct {
		name   string
		data   []byte
		owner  string
		chunks int64
	}{
		{"empty", []byte{}, "", -1},
		{"nil", nil, "", -1},
		{"text", []byte(`{"user":42}`), "user-42", -1},
		{"binary with NUL and invalid UTF-8", []byte{0, 0xff, 0xfe, 0, '\\', '\''}, "ünïcode owner", -1},
		{"one item exactly", big(400_000), "big", -1},
		{"one byte into a chunk", big(400_001), "big", 1},
		{"1 MiB", big(1 << 20), "big", 2},
		{"3 MiB", big(3 << 20), "", 7},
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
		if data == nil || !bytes.Equal(data, tt.data) {
			t.Errorf("%s: data differs (got %d bytes, nil=%v; want %d)", tt.name, len(data), data == nil, len(tt.data))
		}
		if version != 1 {
			t.Errorf("%s: version = %d, want 1", tt.name, version)
		}
		if want := expiry.Truncate(time.Millisecond); !gotExpiry.Equal(want) {
			t.Errorf("%s: expiry = %v, want %v", tt.name, gotExpiry, want)
		}
		if got := attrN(record(t, c, table, id)["chunks"]); got != tt.chunks {
			t.Errorf("%s: chunks attribute = %d, want %d (-1: none)", tt.name, got, tt.chunks)
		}
		if len(data) > 0 {
			data[0]++
			if again, _, _, _, err := s.Load(ctx, id, t0); err != nil || !bytes.Equal(again, tt.data) {
				t.Errorf("%s: modifying a loaded slice changed the record", tt.name)
			}
		}
	}

	// Chunks go with the record they belong to: an update to small data
	// and a delete leave none behind.
	id := testID(t, 6)
	if ok, _, err := s.Update(ctx, id, 1, big(900_000), t0.Add(time.Hour), "big", t0); err != nil || !ok {
		t.Fatalf("Update 1 MiB -> 900 kB = %v, %v", ok, err)
	}
	if got := len(items(t, c, table, "s#"+id)); got != 3 {
		t.Errorf("items of a 900 kB record = %d, want 3 (record + 2 chunks)", got)
	}
	if ok, _, err := s.Update(ctx, id, 2, []byte("small"), t0.Add(time.Hour), "big", t0); err != nil || !ok {
		t.Fatalf("Update to small = %v, %v", ok, err)
	}
	if got := len(items(t, c, table, "s#"+id)); got != 1 {
		t.Errorf("items after shrinking = %d, want 1", got)
	}
	if err := s.Delete(ctx, testID(t, 7)); err != nil {
		t.Fatal(err)
	}
	if got := len(items(t, c, table, "s#"+testID(t, 7))); got != 0 {
		t.Errorf("items after deleting a 3 MiB record = %d, want 0", got)
	}
}

// TestRetireWithEpochExpiry is how a renewal retires the old record:
// Update with an expiry 1 ms after the Unix epoch. The version check
// applies, the update reports success, and the record is gone after.
func TestRetireWithEpochExpiry(t *testing.T) {
	t.Parallel()
	s, c, table := newStore(t, nil)
	ctx := context.Background()
	retired := time.UnixMilli(1)
	for i, owner := range []string{"", "alice"} {
		id := testID(t, i)
		if ok, err := s.Create(ctx, id, []byte("old"), t0.Add(time.Hour), owner, t0); err != nil || !ok {
			t.Fatalf("Create = %v, %v", ok, err)
		}
		if updated, found, err := s.Update(ctx, id, 2, []byte("x"), retired, owner, t0); err != nil || updated || !found {
			t.Fatalf("retire with a stale version = %v, %v, %v; want changed (false, true)", updated, found, err)
		}
		if updated, found, err := s.Update(ctx, id, 1, []byte("old"), retired, "", t0); err != nil || !updated || !found {
			t.Fatalf("retire = %v, %v, %v; want true, true", updated, found, err)
		}
		// DynamoDB ignores ttl values more than five years past: the
		// ttl must not be the 1970 expiry.
		if ttl := attrN(record(t, c, table, id)["ttl"]); ttl < t0.Unix() {
			t.Errorf("ttl of a retired record = %d, before now %d", ttl, t0.Unix())
		}
		if _, _, _, found, err := s.Load(ctx, id, t0); err != nil || found {
			t.Errorf("Load of a retired record = %v, %v; want not found", found, err)
		}
		if found, err := s.Touch(ctx, id, t0.Add(2*time.Hour), t0); err != nil || found {
			t.Errorf("Touch of a retired record = %v, %v; want false", found, err)
		}
		if updated, found, err := s.Update(ctx, id, 2, []byte("y"), t0.Add(time.Hour), owner, t0); err != nil || updated || found {
			t.Errorf("Update of a retired record = %v, %v, %v; want gone", updated, found, err)
		}
		if ids, err := s.ListOwner(ctx, "alice", t0); err != nil || len(ids) != 0 {
			t.Errorf("ListOwner after retiring = %v, %v; want none", ids, err)
		}
		if ok, err := s.Create(ctx, id, []byte("new"), t0.Add(time.Hour), "bob", t0); err != nil || !ok {
			t.Errorf("Create over a retired record = %v, %v; want true", ok, err)
		}
		if data, v, _, found, _ := s.Load(ctx, id, t0); !found || v != 1 || string(data) != "new" {
			t.Errorf("after re-create: %q v%d %v", data, v, found)
		}
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	s, c, table := newStore(t, nil)
	ctx := context.Background()
	exp := t0.Add(time.Hour)
	tests := []struct {
		name        string
		seed        bool
		seedExpiry  time.Time
		version     int64
		owner       string
		wantUpdated bool
		wantFound   bool
	}{
		{"matching version, same owner", true, exp, 1, "o1", true, true},
		{"matching version, new owner", true, exp, 1, "o2", true, true},
		{"matching version, no owner", true, exp, 1, "", true, true},
		{"stale version", true, exp, 7, "o1", false, true},
		{"stale version, new owner", true, exp, 7, "o2", false, true},
		{"older version", true, exp, 0, "o1", false, true},
		{"expired exactly now", true, t0, 1, "o1", false, false},
		{"expired exactly now, new owner", true, t0, 1, "o2", false, false},
		{"expired before now", true, t0.Add(-time.Second), 1, "o1", false, false},
		{"absent", false, time.Time{}, 1, "o1", false, false},
	}
	for i, tt := range tests {
		id := testID(t, i)
		if tt.seed {
			if created, err := s.Create(ctx, id, []byte("old"), tt.seedExpiry, "o1", t0.Add(-time.Hour)); err != nil || !created {
				t.Fatalf("%s: seed: %v, %v", tt.name, created, err)
			}
		}
		updated, found, err := s.Update(ctx, id, tt.version, []byte("new"), t0.Add(2*time.Hour), tt.owner, t0)
		if err != nil || updated != tt.wantUpdated || found != tt.wantFound {
			t.Fatalf("%s: Update = %v, %v, %v; want %v, %v, nil", tt.name, updated, found, err, tt.wantUpdated, tt.wantFound)
		}
		it := record(t, c, table, id)
		if !tt.seed {
			if it != nil {
				t.Errorf("%s: Update created a record", tt.name)
			}
			continue
		}
		data, _ := it["data"].(*types.AttributeValueMemberB)
		version, expiry, owner := attrN(it["version"]), attrN(it["expiry"]), attrS(it["owner"])
		if tt.wantUpdated {
			if data == nil || string(data.Value) != "new" || version != 2 || expiry != t0.Add(2*time.Hour).UnixMilli() || owner != tt.owner {
				t.Errorf("%s: item = %v; want new v2 owner %q", tt.name, it, tt.owner)
			}
		} else if data == nil || string(data.Value) != "old" || version != 1 || expiry != tt.seedExpiry.UnixMilli() || owner != "o1" {
			t.Errorf("%s: failed Update wrote: %v", tt.name, it)
		}
		// Exactly one owner entry per owned record, under its owner.
		var entries []string
		for _, e := range items(t, c, table, "o#") {
			if strings.HasPrefix(attrS(e["sk"]), id) {
				entries = append(entries, attrS(e["pk"]))
			}
		}
		want := []string{"o#" + owner}
		if owner == "" {
			want = nil
		}
		if !slices.Equal(entries, want) {
			t.Errorf("%s: owner entries = %v, want %v", tt.name, entries, want)
		}
	}
}

func TestTouch(t *testing.T) {
	t.Parallel()
	s, c, table := newStore(t, &dynamostore.Options{TTLMargin: time.Minute})
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
		if ttl, want := attrN(record(t, c, table, id)["ttl"]), st.wantExpiry.Add(time.Minute).Unix(); ttl != want {
			t.Errorf("%s: ttl = %d, want %d (expiry + TTLMargin)", st.name, ttl, want)
		}
	}
	if found, err := s.Touch(ctx, testID(t, 2), exp, t0); err != nil || found {
		t.Errorf("Touch(absent) = %v, %v; want false, nil", found, err)
	}
	if it := record(t, c, table, testID(t, 2)); it != nil {
		t.Error("Touch created a record")
	}
}

func TestMalformedIDs(t *testing.T) {
	t.Parallel()
	s, c, table := newStore(t, nil)
	ctx := context.Background()
	good := testID(t, 1)
	if _, err := s.Create(ctx, good, []byte("d"), t0.Add(time.Hour), "", t0); err != nil {
		t.Fatal(err)
	}
	bad := []string{
		"", "abc", strings.ToUpper(good), good[:63], good + "0", good[:62] + "zz", good[:62] + "'-",
		strings.Repeat("é", 32), good[:62] + "#s",
	}
	for _, id := range bad {
		if created, err := s.Create(ctx, id, []byte("x"), t0.Add(time.Hour), "", t0); !errors.Is(err, dynamostore.ErrInvalidID) || created {
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
	if n := len(items(t, c, table, "")); n != 1 {
		t.Errorf("items = %d; want only the well-formed record", n)
	}
}

func TestOwnerTooLong(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, nil)
	ctx := context.Background()
	longest, tooLong := strings.Repeat("u", dynamostore.MaxOwnerLen), strings.Repeat("u", dynamostore.MaxOwnerLen+1)
	id := testID(t, 1)
	if ok, err := s.Create(ctx, id, []byte("d"), t0.Add(time.Hour), longest, t0); err != nil || !ok {
		t.Fatalf("Create with a %d-byte owner = %v, %v", len(longest), ok, err)
	}
	if ids, err := s.ListOwner(ctx, longest, t0); err != nil || !slices.Equal(ids, []string{id}) {
		t.Errorf("ListOwner(longest) = %v, %v", ids, err)
	}
	if ok, err := s.Create(ctx, testID(t, 2), []byte("d"), t0.Add(time.Hour), tooLong, t0); !errors.Is(err, dynamostore.ErrOwnerTooLong) || ok {
		t.Errorf("Create with a %d-byte owner = %v, %v; want ErrOwnerTooLong", len(tooLong), ok, err)
	}
	if ok, _, err := s.Update(ctx, id, 1, []byte("d"), t0.Add(time.Hour), tooLong, t0); !errors.Is(err, dynamostore.ErrOwnerTooLong) || ok {
		t.Errorf("Update to a %d-byte owner = %v, %v; want ErrOwnerTooLong", len(tooLong), ok, err)
	}
	if ids, err := s.ListOwner(ctx, tooLong, t0); err != nil || len(ids) != 0 {
		t.Errorf("ListOwner(too long) = %v, %v; want empty", ids, err)
	}
}

func TestDeleteExpiredInBatches(t *testing.T) {
	t.Parallel()
	c := testClient(t)
	counter := newCounting(c)
	table := testTable(t, c)
	s, err := dynamostore.New(counter, &dynamostore.Options{Table: table, SweepBatch: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	// Ids spread over the shards; every expired one has an owner entry
	// and one has chunks: the sweep removes them too.
	const expired, live = 40, 5
	var liveIDs []string
	for i := range expired + live {
		exp := t0.Add(-time.Duration(i+1) * time.Second)
		if i == 0 {
			exp = t0 // expiry == now is expired
		}
		data := []byte("d")
		if i == 1 {
			data = make([]byte, 500_000)
		}
		if i >= expired {
			exp = t0.Add(time.Millisecond + time.Duration(i)*time.Second)
			liveIDs = append(liveIDs, testID(t, i))
		}
		if _, err := s.Create(ctx, testID(t, i), data, exp, "o", t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	before := counter.get("Query")
	n, err := s.DeleteExpired(ctx, t0)
	if err != nil || n != expired {
		t.Fatalf("DeleteExpired = %d, %v; want %d", n, err, expired)
	}
	// 16 shards, at least one query each, at most 3 entries per query.
	if q := counter.get("Query") - before; q < 16 || q > 16+expired/3+1 {
		t.Errorf("DeleteExpired ran %d queries; want between 16 and %d", q, 16+expired/3+1)
	}
	ids, err := s.ListOwner(ctx, "o", t0)
	slices.Sort(ids)
	slices.Sort(liveIDs)
	if err != nil || !slices.Equal(ids, liveIDs) {
		t.Errorf("live records after sweep = %v, %v; want %v", ids, err, liveIDs)
	}
	if got := len(items(t, c, table, "o#")); got != live {
		t.Errorf("owner entries after sweep = %d, want %d (the swept records' entries removed)", got, live)
	}
	if got := len(items(t, c, table, "s#")); got != live {
		t.Errorf("record and chunk items after sweep = %d, want %d", got, live)
	}
	if n, err := s.DeleteExpired(ctx, t0); n != 0 || err != nil {
		t.Errorf("second sweep = %d, %v; want 0", n, err)
	}
}

func TestOwnerIndex(t *testing.T) {
	t.Parallel()
	s, c, table := newStore(t, nil)
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
		if err != nil || ids == nil {
			t.Fatalf("ListOwner(%q) = %v, %v; want a non-nil slice", owner, ids, err)
		}
		slices.Sort(ids)
		return ids
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	for owner, want := range map[string][]string{
		"alice":  sorted(testID(t, 0), testID(t, 1)),
		"Alice":  {testID(t, 3)},
		"alice ": {testID(t, 4)},
		"":       {},
		"carol":  {},
	} {
		if got := list(owner); !slices.Equal(got, want) {
			t.Errorf("ListOwner(%q) = %v, want %v", owner, got, want)
		}
	}

	// Moving a record to another owner removes its old entry.
	if ok, _, err := s.Update(ctx, testID(t, 1), 1, nil, live, "bob", t0); err != nil || !ok {
		t.Fatalf("Update owner: %v, %v", ok, err)
	}
	if got := len(items(t, c, table, "o#alice")); got != 3 { // alice (0, 2), "alice " (4)
		t.Errorf("owner entries with prefix o#alice after a move = %d, want 3", got)
	}
	if got := list("bob"); !slices.Equal(got, sorted(testID(t, 1), testID(t, 6))) {
		t.Errorf("ListOwner(bob) after the move = %v", got)
	}

	if n, err := s.DeleteOwner(ctx, "alice", t0); err != nil || n != 1 {
		t.Fatalf("DeleteOwner(alice) = %d, %v; want 1 (one live, one expired)", n, err)
	}
	for _, i := range []int{0, 2} {
		if it := record(t, c, table, testID(t, i)); it != nil {
			t.Errorf("record %d of alice survived DeleteOwner", i)
		}
	}
	if got := len(items(t, c, table, "o#alice")); got != 1 {
		t.Errorf("entries with prefix o#alice after DeleteOwner(alice) = %d, want 1 (\"alice \"'s)", got)
	}
	if got := list("Alice"); len(got) != 1 {
		t.Errorf("DeleteOwner(alice) touched Alice: %v", got)
	}
	if n, err := s.DeleteOwner(ctx, "", t0); err != nil || n != 0 {
		t.Errorf(`DeleteOwner("") = %d, %v`, n, err)
	}
}

// hookAPI runs before(op, in) ahead of every request.
type hookAPI struct {
	dynamostore.API
	before func(op string, in any) error
}

func (h *hookAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, f ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := h.before("PutItem", in); err != nil {
		return nil, err
	}
	return h.API.PutItem(ctx, in, f...)
}

func (h *hookAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, f ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := h.before("UpdateItem", in); err != nil {
		return nil, err
	}
	return h.API.UpdateItem(ctx, in, f...)
}

// isRecordWrite reports a write of a session record (not an owner entry or
// chunk).
func isRecordWrite(in any) bool {
	switch in := in.(type) {
	case *dynamodb.PutItemInput:
		return attrS(in.Item["sk"]) == "s"
	case *dynamodb.UpdateItemInput:
		return attrS(in.Key["sk"]) == "s"
	}
	return false
}

// TestDeleteOwnerDuringCreate runs DeleteOwner between the two writes of a
// Create (the owner entry, then the record), the window in which the entry
// points at a record that does not exist yet. DeleteOwner must leave the
// entry, so that a later DeleteOwner still finds the record.
func TestDeleteOwnerDuringCreate(t *testing.T) {
	t.Parallel()
	base, c, table := newStore(t, nil)
	ctx := context.Background()
	for i, op := range []string{"Create", "Update"} {
		id := testID(t, i)
		if op == "Update" {
			if ok, err := base.Create(ctx, id, []byte("x"), t0.Add(time.Hour), "bob", t0); err != nil || !ok {
				t.Fatal(err)
			}
		}
		hook := &hookAPI{API: c}
		var once sync.Once
		hook.before = func(_ string, in any) error {
			if isRecordWrite(in) {
				once.Do(func() {
					if n, err := base.DeleteOwner(ctx, "alice", t0); err != nil || n != 0 {
						t.Errorf("%s: DeleteOwner in the window = %d, %v; want 0", op, n, err)
					}
				})
			}
			return nil
		}
		s, err := dynamostore.New(hook, &dynamostore.Options{Table: table})
		if err != nil {
			t.Fatal(err)
		}
		if op == "Create" {
			if ok, err := s.Create(ctx, id, []byte("x"), t0.Add(time.Hour), "alice", t0); err != nil || !ok {
				t.Fatalf("Create = %v, %v", ok, err)
			}
		} else if ok, _, err := s.Update(ctx, id, 1, []byte("x"), t0.Add(time.Hour), "alice", t0); err != nil || !ok {
			t.Fatalf("Update = %v, %v", ok, err)
		}
		if n, err := base.DeleteOwner(ctx, "alice", t0); err != nil || n != 1 {
			t.Errorf("%s: DeleteOwner after the write = %d, %v; want 1", op, n, err)
		}
		if it := record(t, c, table, id); it != nil {
			t.Errorf("%s: the record survived DeleteOwner", op)
		}
	}
}

// TestCrashBetweenWrites: a Create whose record write fails after its owner
// entry was written leaves a stale entry that ListOwner and DeleteOwner
// ignore; a Create refused because the id is live removes its entry.
func TestCrashBetweenWrites(t *testing.T) {
	t.Parallel()
	base, c, table := newStore(t, nil)
	ctx := context.Background()
	boom := errors.New("connection reset")
	hook := &hookAPI{API: c, before: func(_ string, in any) error {
		if isRecordWrite(in) {
			return boom
		}
		return nil
	}}
	s, err := dynamostore.New(hook, &dynamostore.Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	id := testID(t, 1)
	if ok, err := s.Create(ctx, id, []byte("x"), t0.Add(time.Hour), "alice", t0); !errors.Is(err, boom) || ok {
		t.Fatalf("Create with a failing record write = %v, %v; want the error", ok, err)
	}
	if ids, err := base.ListOwner(ctx, "alice", t0); err != nil || len(ids) != 0 {
		t.Errorf("ListOwner after a failed Create = %v, %v; want none", ids, err)
	}
	if ok, err := base.Create(ctx, id, []byte("x"), t0.Add(time.Hour), "bob", t0); err != nil || !ok {
		t.Fatal(err)
	}
	if ok, err := base.Create(ctx, id, []byte("y"), t0.Add(time.Hour), "carol", t0); err != nil || ok {
		t.Fatalf("Create over a live record = %v, %v", ok, err)
	}
	if got := len(items(t, c, table, "o#carol")); got != 0 {
		t.Errorf("a refused Create left %d owner entries", got)
	}
	// A refused Create with the live record's own owner must not remove
	// (or replace) that record's entry.
	if ok, err := base.Create(ctx, id, []byte("z"), t0.Add(time.Hour), "bob", t0); err != nil || ok {
		t.Fatalf("Create over a live record = %v, %v", ok, err)
	}
	if n, err := base.DeleteOwner(ctx, "alice", t0); err != nil || n != 0 {
		t.Errorf("DeleteOwner(alice) = %d, %v; want 0", n, err)
	}
	if _, _, _, found, _ := base.Load(ctx, id, t0); !found {
		t.Error("DeleteOwner of a stale entry's owner deleted another owner's record")
	}
	if n, err := base.DeleteOwner(ctx, "bob", t0); err != nil || n != 1 {
		t.Errorf("DeleteOwner(bob) = %d, %v; want 1", n, err)
	}
}

// TestConcurrentWriters stresses one id: many Creates, then many Updates of
// one version, then Updates that move the owner while Touches and Loads
// run.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	s, c, table := newStore(t, nil)
	ctx := context.Background()
	const writers = 8
	run := func(f func(i int) bool) int {
		var wg sync.WaitGroup
		wins := make(chan int, writers)
		for i := range writers {
			wg.Go(func() {
				if f(i) {
					wins <- i
				}
			})
		}
		wg.Wait()
		close(wins)
		return len(wins)
	}
	id := testID(t, 1)
	if n := run(func(i int) bool {
		ok, err := s.Create(ctx, id, []byte{byte(i)}, t0.Add(time.Hour), "o"+strconv.Itoa(i), t0)
		if err != nil {
			t.Error(err)
		}
		return ok
	}); n != 1 {
		t.Fatalf("%d concurrent Creates of one id succeeded, want 1", n)
	}
	if n := run(func(i int) bool {
		ok, found, err := s.Update(ctx, id, 1, []byte{byte(i)}, t0.Add(time.Hour), "p"+strconv.Itoa(i%2), t0)
		if err != nil || !found {
			t.Errorf("Update = %v, %v, %v; want found", ok, found, err)
		}
		return ok
	}); n != 1 {
		t.Fatalf("%d concurrent Updates of version 1 succeeded, want 1", n)
	}
	// Read-modify-write loops with owner changes, touches and loads.
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for range 15 {
				switch g % 3 {
				case 0:
					_, _ = s.Touch(ctx, id, t0.Add(2*time.Hour), t0)
				default:
					_, v, _, found, err := s.Load(ctx, id, t0)
					if err != nil || !found {
						t.Errorf("Load = %v, %v", found, err)
						return
					}
					_, _, err = s.Update(ctx, id, v, []byte{byte(g)}, t0.Add(time.Hour), "q"+strconv.Itoa(g), t0)
					if err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	// The only owner entry left for the id is the final record's.
	it := record(t, c, table, id)
	owner, nonce := attrS(it["owner"]), attrS(it["nonce"])
	matching := 0
	for _, e := range items(t, c, table, "o#") {
		if strings.HasPrefix(attrS(e["sk"]), id) {
			if attrS(e["sk"]) != id+"#"+nonce || attrS(e["pk"]) != "o#"+owner {
				t.Errorf("stale owner entry %s %s left (record: %s, nonce %s)", attrS(e["pk"]), attrS(e["sk"]), owner, nonce)
			}
			matching++
		}
	}
	if matching != 1 {
		t.Errorf("owner entries of the id = %d, want 1 (the final record's, owner %q)", matching, owner)
	}
	if n, err := s.DeleteOwner(ctx, owner, t0); err != nil || n != 1 {
		t.Errorf("DeleteOwner(final owner) = %d, %v; want 1", n, err)
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	id := testID(t, 1)
	now := t0
	calls := map[string]func() error{
		"Create":        func() error { _, err := s.Create(ctx, id, nil, now.Add(time.Hour), "o", now); return err },
		"Load":          func() error { _, _, _, _, err := s.Load(ctx, id, now); return err },
		"Update":        func() error { _, _, err := s.Update(ctx, id, 1, nil, now, "", now); return err },
		"Touch":         func() error { _, err := s.Touch(ctx, id, now, now); return err },
		"Delete":        func() error { return s.Delete(ctx, id) },
		"DeleteExpired": func() error { _, err := s.DeleteExpired(ctx, now); return err },
		"ListOwner":     func() error { _, err := s.ListOwner(ctx, "o", now); return err },
		"DeleteOwner":   func() error { _, err := s.DeleteOwner(ctx, "o", now); return err },
		"CreateTable":   func() error { return s.CreateTable(ctx) },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v; want an error wrapping context.Canceled", name, err)
		} else if !strings.HasPrefix(err.Error(), "dynamostore: ") {
			t.Errorf("%s error %q lacks the dynamostore: prefix", name, err)
		}
	}
}

// TestUnreachable: with nothing listening, calls fail with a prefixed error
// within the context's deadline.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	c := newClient("http://127.0.0.1:1")
	s, err := dynamostore.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, _, _, _, err = s.Load(ctx, testID(t, 1), t0)
	if err == nil || !strings.HasPrefix(err.Error(), "dynamostore: load: ") {
		t.Fatalf("Load from an unreachable server = %v; want a dynamostore: load: error", err)
	}
	if err := s.CreateTable(ctx); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("CreateTable on an unreachable server = %v; want connection refused", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failing took %v", d)
	}
}

// awsLikeAPI adds what AWS DynamoDB does and dynalite does not: a write
// whose condition fails with ReturnValuesOnConditionCheckFailure ALL_OLD
// returns the item with the error. (It reads the item after the failure,
// which is good enough for sequential tests.) GetItem calls of the store
// are counted; the wrapper's own are not.
type awsLikeAPI struct {
	dynamostore.API
	gets int
}

func (a *awsLikeAPI) GetItem(ctx context.Context, in *dynamodb.GetItemInput, f ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	a.gets++
	return a.API.GetItem(ctx, in, f...)
}

func (a *awsLikeAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, f ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	out, err := a.API.UpdateItem(ctx, in, f...)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) && in.ReturnValuesOnConditionCheckFailure == types.ReturnValuesOnConditionCheckFailureAllOld {
		got, gerr := a.API.GetItem(ctx, &dynamodb.GetItemInput{TableName: in.TableName, Key: in.Key, ConsistentRead: aws.Bool(true)})
		if gerr != nil {
			return nil, gerr
		}
		ccf.Item = got.Item
	}
	return out, err
}

// TestFailedConditionReturnsItem: where the server returns the item with a
// failed condition, Update and Touch tell "changed" from "gone" without a
// second request, and answer as they do with the read.
func TestFailedConditionReturnsItem(t *testing.T) {
	t.Parallel()
	_, c, table := newStore(t, nil)
	api := &awsLikeAPI{API: c}
	s, err := dynamostore.New(api, &dynamostore.Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exp := t0.Add(time.Hour)
	live, expired := testID(t, 1), testID(t, 2)
	for _, id := range []string{live, expired} {
		e := exp
		if id == expired {
			e = t0
		}
		if ok, err := s.Create(ctx, id, []byte("d"), e, "o", t0.Add(-time.Hour)); err != nil || !ok {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name                  string
		call                  func() (bool, bool, error)
		wantA, wantB, wantGet bool
	}{
		{"Update stale version", func() (bool, bool, error) {
			return s.Update(ctx, live, 9, []byte("x"), exp, "o", t0)
		}, false, true, false},
		{"Update stale version, new owner", func() (bool, bool, error) {
			return s.Update(ctx, live, 9, []byte("x"), exp, "p", t0)
		}, false, true, false},
		{"Update expired", func() (bool, bool, error) {
			return s.Update(ctx, expired, 1, []byte("x"), exp, "o", t0)
		}, false, false, false},
		{"Update absent (no item to return: a read)", func() (bool, bool, error) {
			return s.Update(ctx, testID(t, 3), 1, []byte("x"), exp, "o", t0)
		}, false, false, true},
		{"Touch earlier", func() (bool, bool, error) {
			found, err := s.Touch(ctx, live, t0.Add(time.Minute), t0)
			return found, false, err
		}, true, false, false},
		{"Touch expired", func() (bool, bool, error) {
			found, err := s.Touch(ctx, expired, exp, t0)
			return found, false, err
		}, false, false, false},
		{"Update matching version, new owner", func() (bool, bool, error) {
			return s.Update(ctx, live, 1, []byte("x"), exp, "p", t0)
		}, true, true, false},
	}
	for _, st := range steps {
		before := api.gets
		a, b, err := st.call()
		if err != nil || a != st.wantA || b != st.wantB {
			t.Errorf("%s = %v, %v, %v; want %v, %v", st.name, a, b, err, st.wantA, st.wantB)
		}
		if got := api.gets > before; got != st.wantGet {
			t.Errorf("%s: read the record: %v, want %v", st.name, got, st.wantGet)
		}
	}
	if ids, err := s.ListOwner(ctx, "p", t0); err != nil || !slices.Equal(ids, []string{live}) {
		t.Errorf("ListOwner(p) = %v, %v", ids, err)
	}
}
