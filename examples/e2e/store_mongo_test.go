//go:build unix

package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The mongo kinds run against the server .ci/mongo.sh starts (FerretDB;
// SESSIONS_MONGO_URI, default mongodb://127.0.0.1:27017); each test gets a
// database of its own, dropped when it ends. Outages run behind a proxy.
// They are emulated kinds: the test server lets one write per collection
// through at a time (see mongostore's README), so 50 concurrent increments
// of one session, each a compare-and-set loop, queue behind each other
// for seconds (8 of 50 answered 503 on a machine at load average 4).
func init() {
	cached := cacheKind("mongo", setupMongo, unreachableMongo, mongoAddr, mongoVia)
	cached.emulated = true
	storeKinds = append(storeKinds,
		&storeKind{name: "mongo", persistent: true, emulated: true, setup: setupMongo, unreachable: unreachableMongo,
			serviceAddr: mongoAddr, dsnVia: mongoVia},
		cached,
	)
}

var mongoSrv struct {
	once   sync.Once
	err    error
	client *mongo.Client
}

func mongoBaseURI() string {
	if u := os.Getenv("SESSIONS_MONGO_URI"); u != "" {
		return u
	}
	return "mongodb://127.0.0.1:27017"
}

// mongoURI returns the base URI with the database db.
func mongoURI(db string) string {
	u, err := url.Parse(mongoBaseURI())
	if err != nil {
		return mongoBaseURI()
	}
	u.Path = "/" + db
	return u.String()
}

func mongoRun(t *testing.T) {
	t.Helper()
	mongoSrv.once.Do(func() {
		c, err := mongo.Connect(options.Client().ApplyURI(mongoBaseURI()).SetServerSelectionTimeout(5 * time.Second))
		if err != nil {
			mongoSrv.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Ping(ctx, nil); err != nil {
			_ = c.Disconnect(context.Background())
			mongoSrv.err = err
			return
		}
		mongoSrv.client = c
		atExit(func() { _ = c.Disconnect(context.Background()) })
	})
	if mongoSrv.err != nil {
		unavailable(t, "MongoDB (start FerretDB with .ci/mongo.sh start)", mongoSrv.err)
	}
}

func setupMongo(t *testing.T) ([]string, func(*testing.T) int) {
	mongoRun(t)
	name := fmt.Sprintf("sk_e2e_%s_%d", runID, seq.Add(1))
	db := mongoSrv.client.Database(name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	count := func(t *testing.T) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n, err := db.Collection("sessions").CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatalf("counting session records: %v", err)
		}
		return int(n)
	}
	return []string{"-store", "mongo", "-dsn", mongoURI(name)}, count
}

// mongoAddr returns the server's host:port.
func mongoAddr() string {
	u, err := url.Parse(mongoBaseURI())
	if err != nil {
		return ""
	}
	return u.Host
}

// mongoVia returns dsn with its host and port replaced by addr.
func mongoVia(dsn, addr string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Host = addr
	return u.String()
}

func unreachableMongo(_ *testing.T, addr string) []string {
	return []string{"-store", "mongo", "-dsn", "mongodb://" + addr + "/test"}
}
