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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The DynamoDB kinds: the app's sessions in a table of each test's own on
// the endpoint .ci/dynamodb.sh starts (dynalite), reached through a proxy
// for the outage cases.
func init() {
	storeKinds = append(storeKinds,
		&storeKind{name: "dynamodb", persistent: true, setup: setupDynamoDB, unreachable: unreachableDynamoDB,
			serviceAddr: dynamoAddr, dsnVia: dynamoVia},
		cacheKind("dynamodb", setupDynamoDB, unreachableDynamoDB, dynamoAddr, dynamoVia),
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

func setupDynamoDB(t *testing.T) ([]string, func(*testing.T) int) {
	dynamoRun(t)
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
