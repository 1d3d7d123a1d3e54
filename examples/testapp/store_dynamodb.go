package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/dynamostore"
)

// -store dynamodb -dsn http://HOST:PORT/TABLE: sessions in table TABLE
// (created if absent) of the DynamoDB endpoint, signed with static
// credentials (an emulator such as dynalite accepts any). The default is
// where .ci/dynamodb.sh starts dynalite.
func init() {
	backends["dynamodb"] = backend{open: openDynamoDB, defaultDSN: "http://127.0.0.1:4567/sessions", canBack: true}
	for _, k := range kinds {
		if k == "dynamodb" {
			return
		}
	}
	kinds = append(kinds, "dynamodb")
}

// parseDynamoDSN splits http(s)://HOST:PORT/TABLE into the endpoint and the
// table.
func parseDynamoDSN(dsn string) (endpoint, table string, err error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("%q: want http://HOST:PORT/TABLE", dsn)
	}
	table = strings.TrimPrefix(u.Path, "/")
	if table == "" || strings.Contains(table, "/") {
		return "", "", fmt.Errorf("%q names no table: want http://HOST:PORT/TABLE", dsn)
	}
	return u.Scheme + "://" + u.Host, table, nil
}

func openDynamoDB(ctx context.Context, dsn string, _ *slog.Logger) (sessions.Store, func(), error) {
	endpoint, table, err := parseDynamoDSN(dsn)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("dynamodb: -dsn: %w", err)}
	}
	// Keep a connection per concurrent request: the SDK's default keeps 10
	// idle connections per host, so bursts of concurrent saves would open
	// and close connections on every request.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = 256
	})
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("sessionkit", "sessionkit", ""),
		HTTPClient:   httpClient,
	})
	store, err := dynamostore.New(client, &dynamostore.Options{Table: table})
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("dynamodb: -dsn: %w", err)}
	}
	if err := store.CreateTable(ctx); err != nil {
		return nil, nil, fmt.Errorf("dynamodb %s: %w", endpoint, err)
	}
	return store, func() {}, nil
}
