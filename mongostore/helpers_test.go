package mongostore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionkit/sessions/mongostore"
)

// defaultURI is where .ci/mongo.sh starts FerretDB.
const defaultURI = "mongodb://127.0.0.1:27017"

// testDB is the database the tests use; each test has collections of its
// own in it.
const testDB = "sessionkit_test"

var (
	clientOnce sync.Once
	client     *mongo.Client
	clientErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = client.Disconnect(ctx)
		cancel()
	}
	os.Exit(code)
}

func testURI() string {
	if uri := os.Getenv("SESSIONS_MONGO_URI"); uri != "" {
		return uri
	}
	return defaultURI
}

// testClient returns the shared client, skipping the test (or failing it
// under SESSIONS_REQUIRE_SERVICES=1) when the server is unreachable.
func testClient(tb testing.TB) *mongo.Client {
	tb.Helper()
	clientOnce.Do(func() {
		uri := testURI()
		c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = c.Ping(ctx, nil)
			cancel()
			if err != nil {
				_ = c.Disconnect(context.Background())
			}
		}
		if err != nil {
			clientErr = fmt.Errorf("MongoDB at %q: %w", uri, err)
			return
		}
		client = c
	})
	if clientErr != nil {
		if os.Getenv("SESSIONS_REQUIRE_SERVICES") == "1" {
			tb.Fatalf("MongoDB required (SESSIONS_REQUIRE_SERVICES=1) but unreachable (start it with .ci/mongo.sh start): %v", clientErr)
		}
		tb.Skipf("MongoDB unreachable, skipping (start it with .ci/mongo.sh start, set SESSIONS_MONGO_URI, or SESSIONS_REQUIRE_SERVICES=1 to fail): %v", clientErr)
	}
	return client
}

// collectionName derives a valid, unique collection name from a test name.
func collectionName(testName string) string {
	sum := sha256.Sum256([]byte(testName))
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(sum[:6]))
	return b.String()
}

// testCollection names a collection of the test's own, dropped before and
// after the test.
func testCollection(tb testing.TB, c *mongo.Client) string {
	tb.Helper()
	name := collectionName(tb.Name())
	coll := c.Database(testDB).Collection(name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := coll.Drop(ctx); err != nil {
		tb.Fatalf("drop collection: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := coll.Drop(ctx); err != nil {
			tb.Errorf("drop collection %s: %v", name, err)
		}
	})
	return name
}

// newStore returns a store on a fresh collection of the test's own, with
// its indexes, and that collection.
func newStore(tb testing.TB, opts *mongostore.Options) (*mongostore.Store, *mongo.Collection) {
	tb.Helper()
	c := testClient(tb)
	var o mongostore.Options
	if opts != nil {
		o = *opts
	}
	o.Collection = testCollection(tb, c)
	if o.Logger == nil {
		// FerretDB has no TTL indexes: keep the once-per-store notice
		// out of the test output.
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := mongostore.New(c.Database(testDB), &o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.EnsureIndexes(ctx); err != nil {
		tb.Fatalf("EnsureIndexes: %v", err)
	}
	return s, s.Collection()
}

// testID returns a well-formed id (lower-case hex SHA-256) unique to the
// test and n.
func testID(tb testing.TB, n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", tb.Name(), n))
	return hex.EncodeToString(sum[:])
}
