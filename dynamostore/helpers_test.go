package dynamostore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sessionkit/sessions/dynamostore"
)

const defaultEndpoint = "http://127.0.0.1:4567"

var (
	clientOnce sync.Once
	client     *dynamodb.Client
	clientErr  error
)

// endpoint is where the tests find DynamoDB (dynalite in CI).
func endpoint() string {
	if e := os.Getenv("SESSIONS_DYNAMODB_ENDPOINT"); e != "" {
		return e
	}
	return defaultEndpoint
}

// newClient returns a client for a local endpoint, signing with static
// credentials (the emulator accepts any).
func newClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("sessionkit", "sessionkit", ""),
	})
}

// testClient returns the shared client, skipping the test (or failing it
// under SESSIONS_REQUIRE_SERVICES=1) when the server is unreachable.
func testClient(tb testing.TB) *dynamodb.Client {
	tb.Helper()
	clientOnce.Do(func() {
		c := newClient(endpoint())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)}); err != nil {
			clientErr = fmt.Errorf("DynamoDB at %q: %w", endpoint(), err)
			return
		}
		client = c
	})
	if clientErr != nil {
		if os.Getenv("SESSIONS_REQUIRE_SERVICES") == "1" {
			tb.Fatalf("DynamoDB required (SESSIONS_REQUIRE_SERVICES=1) but unreachable: %v", clientErr)
		}
		tb.Skipf("DynamoDB unreachable, skipping (set SESSIONS_DYNAMODB_ENDPOINT, or SESSIONS_REQUIRE_SERVICES=1 to fail): %v", clientErr)
	}
	return client
}

// tableName derives a valid, unique table name from a test name.
func tableName(testName string) string {
	sum := sha256.Sum256([]byte(testName))
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range testName {
		if b.Len() >= 60 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(sum[:6]))
	return b.String()
}

// testTable returns a table name of the test's own, deleted when the test
// ends.
func testTable(tb testing.TB, c *dynamodb.Client) string {
	tb.Helper()
	name := tableName(tb.Name())
	dropTable(c, name)
	tb.Cleanup(func() { dropTable(c, name) })
	return name
}

func dropTable(c *dynamodb.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &name}); err != nil {
		return
	}
	w := dynamodb.NewTableNotExistsWaiter(c, func(o *dynamodb.TableNotExistsWaiterOptions) { o.MinDelay = 20 * time.Millisecond })
	_ = w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: &name}, 10*time.Second)
}

// newStore returns a store on a fresh table of the test's own.
func newStore(tb testing.TB, opts *dynamostore.Options) (*dynamostore.Store, *dynamodb.Client, string) {
	tb.Helper()
	c := testClient(tb)
	var o dynamostore.Options
	if opts != nil {
		o = *opts
	}
	o.Table = testTable(tb, c)
	s, err := dynamostore.New(c, &o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	if err := s.CreateTable(context.Background()); err != nil {
		tb.Fatalf("CreateTable: %v", err)
	}
	return s, c, o.Table
}

// testID returns a well-formed id (lower-case hex SHA-256) unique to the
// test and n.
func testID(tb testing.TB, n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", tb.Name(), n))
	return hex.EncodeToString(sum[:])
}

// countingAPI wraps an API and counts requests by operation.
type countingAPI struct {
	dynamostore.API
	mu    sync.Mutex
	calls map[string]int
}

func newCounting(api dynamostore.API) *countingAPI {
	return &countingAPI{API: api, calls: map[string]int{}}
}

func (c *countingAPI) count(op string) {
	c.mu.Lock()
	c.calls[op]++
	c.mu.Unlock()
}

func (c *countingAPI) get(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

func (c *countingAPI) GetItem(ctx context.Context, in *dynamodb.GetItemInput, f ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.count("GetItem")
	return c.API.GetItem(ctx, in, f...)
}

func (c *countingAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, f ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.count("PutItem")
	return c.API.PutItem(ctx, in, f...)
}

func (c *countingAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, f ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.count("UpdateItem")
	return c.API.UpdateItem(ctx, in, f...)
}

func (c *countingAPI) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, f ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.count("DeleteItem")
	return c.API.DeleteItem(ctx, in, f...)
}

func (c *countingAPI) Query(ctx context.Context, in *dynamodb.QueryInput, f ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.count("Query")
	return c.API.Query(ctx, in, f...)
}

var _ dynamostore.API = (*dynamodb.Client)(nil)
