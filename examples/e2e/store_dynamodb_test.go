//go:build unix

package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The DynamoDB kinds: the app's sessions in a table of each test's own on
// the endpoint .ci/dynamodb.sh starts (dynalite), reached through a proxy
// for the outage cases.
func init() {
	cached := cacheKind("dynamodb", setupDynamoDB, unreachableDynamoDB, dynamoAddr, dynamoVia)
	cached.emulated = true
	storeKinds = append(storeKinds,
		&storeKind{name: "dynamodb", persistent: true, emulated: true, setup: setupDynamoDB, unreachable: unreachableDynamoDB,
			serviceAddr: dynamoAddr, dsnVia: dynamoVia},
		cached,
	)
}

func dynamoEndpoint() string {
	if e := os.Getenv("SESSIONS_DYNAMODB_ENDPOINT"); e != "" {
		return e
	}
	return "http://127.0.0.1:4567"
}

var dynamoSrv struct {
	once   sync.Once
	err    error
	client *dynamodb.Client
}

func dynamoRun(t *testing.T) {
	t.Helper()
	dynamoSrv.once.Do(func() {
		c := dynamodb.New(dynamodb.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(dynamoEndpoint()),
			Credentials:  credentials.NewStaticCredentialsProvider("sessionkit", "sessionkit", ""),
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)}); err != nil {
			dynamoSrv.err = err
			return
		}
		dynamoSrv.client = c
	})
	if dynamoSrv.err != nil {
		unavailable(t, "DynamoDB", dynamoSrv.err)
	}
}

// dynamoHeavy runs the cases that hammer one session with dozens of
// concurrent requests (Concurrent*) one at a time across the DynamoDB
// kinds. dynalite serves about a thousand requests a second on one Node.js
// thread (measured here: 950-1500 with 1 to 40 clients), and every lost
// race costs a save three requests, so two such cases at once push saves
// past the app's 3 s store and idle timeouts on a loaded machine. Each
// passes on its own; the other cases run in parallel as usual.
var dynamoHeavy struct {
	gate   chan struct{}
	mu     sync.Mutex
	holder string // the case holding gate, "" for none
}

func init() { dynamoHeavy.gate = make(chan struct{}, 1) }

func dynamoGate(t *testing.T) {
	parts := strings.SplitN(t.Name(), "/", 4) // TestE2E/KIND/CASE[/subtest]
	if len(parts) < 3 || !strings.HasPrefix(parts[2], "Concurrent") {
		return
	}
	key := strings.Join(parts[:3], "/")
	dynamoHeavy.mu.Lock()
	held := dynamoHeavy.holder == key // a subtest of the running case
	dynamoHeavy.mu.Unlock()
	if held {
		return
	}
	dynamoHeavy.gate <- struct{}{}
	dynamoHeavy.mu.Lock()
	dynamoHeavy.holder = key
	dynamoHeavy.mu.Unlock()
	t.Cleanup(func() {
		dynamoHeavy.mu.Lock()
		dynamoHeavy.holder = ""
		dynamoHeavy.mu.Unlock()
		<-dynamoHeavy.gate
	})
}

func setupDynamoDB(t *testing.T) ([]string, func(*testing.T) int) {
	dynamoRun(t)
	dynamoGate(t)
	table := fmt.Sprintf("sk_e2e_%s_%d", runID, seq.Add(1))
	c := dynamoSrv.client
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		// The app creates the table; a test that failed before may not
		// have.
		_, _ = c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &table})
	})
	count := func(t *testing.T) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Session records only: owner entries and data chunks share the
		// table.
		p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{
			TableName:                 &table,
			ConsistentRead:            aws.Bool(true),
			FilterExpression:          aws.String("begins_with(pk, :p) AND sk = :s"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "s#"}, ":s": &types.AttributeValueMemberS{Value: "s"}},
			Select:                    types.SelectCount,
		})
		n := 0
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("counting session records: %v", err)
			}
			n += int(page.Count)
		}
		return n
	}
	return []string{"-store", "dynamodb", "-dsn", dynamoEndpoint() + "/" + table}, count
}

// dynamoAddr returns the DynamoDB endpoint's host:port.
func dynamoAddr() string {
	u, err := url.Parse(dynamoEndpoint())
	if err != nil {
		return ""
	}
	return u.Host
}

// dynamoVia returns dsn with its host and port replaced by addr.
func dynamoVia(dsn, addr string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Host = addr
	return u.String()
}

func unreachableDynamoDB(_ *testing.T, addr string) []string {
	return []string{"-store", "dynamodb", "-dsn", "http://" + addr + "/sessions"}
}

// TestStartupDynamoDB checks the app's refusals of malformed DynamoDB DSNs:
// a usage error (exit 2) before any request.
func TestStartupDynamoDB(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"nope",
		"127.0.0.1:4567/sessions",        // no scheme
		"http://127.0.0.1:4567",          // no table
		"http://127.0.0.1:4567/a/b",      // not a table name
		"http://127.0.0.1:4567/ab",       // too short for DynamoDB
		"http://127.0.0.1:4567/x?y=z",    // no parameters
		"http://u:p@127.0.0.1:4567/sess", // credentials do not belong in the DSN
	} {
		t.Run(dsn, func(t *testing.T) {
			t.Parallel()
			res := runToExit(t, "-store", "dynamodb", "-dsn", dsn)
			if res.code != 2 || strings.Contains(res.stdout, "listening on") || !strings.Contains(res.stderr, "dynamodb") {
				t.Fatalf("testapp -store dynamodb -dsn %q: exit %d, stdout %q, stderr %q; want exit 2 and dynamodb on stderr",
					dsn, res.code, res.stdout, res.stderr)
			}
		})
	}
}
