package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// CreateTable creates the table if it does not exist: keys pk (string,
// partition) and sk (string, sort), the global secondary index
// [ExpiryIndex] on shard (string, partition) and expiry (number, sort)
// projecting keys only, on-demand billing. It waits until the table and the
// index are active, then enables DynamoDB's TTL on the ttl attribute.
//
// It is idempotent and safe to call from many processes at once. An
// existing table is checked, not altered: if its keys or index differ,
// CreateTable returns an error wrapping [ErrTableSchema]. A server that
// does not implement UpdateTimeToLive (dynalite) is accepted: TTL is only
// garbage collection.
func (s *Store) CreateTable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dynamostore: create table: %w", err)
	}
	_, err := s.db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: s.table,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(aPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(aSK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(aShard), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(aExpiry), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(aPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(aSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(ExpiryIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(aShard), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(aExpiry), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}},
		BillingMode: types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("dynamostore: create table: %w", err)
	}
	if err := s.waitActive(ctx); err != nil {
		return fmt.Errorf("dynamostore: create table: %w", err)
	}
	if err := s.enableTTL(ctx); err != nil {
		return fmt.Errorf("dynamostore: create table: %w", err)
	}
	return nil
}

// waitActive polls DescribeTable until the table and its expiry index are
// active, and checks their keys.
func (s *Store) waitActive(ctx context.Context) error {
	delay := 50 * time.Millisecond
	for {
		out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: s.table})
		if err != nil {
			return err
		}
		t := out.Table
		if err := checkSchema(t); err != nil {
			return err
		}
		active := t.TableStatus == types.TableStatusActive
		for _, g := range t.GlobalSecondaryIndexes {
			if aws.ToString(g.IndexName) == ExpiryIndex && g.IndexStatus != types.IndexStatusActive {
				active = false
			}
		}
		if active {
			return nil
		}
		tm := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		case <-tm.C:
		}
		delay = min(2*delay, time.Second)
	}
}

func checkSchema(t *types.TableDescription) error {
	if !sameKeys(t.KeySchema, aPK, aSK) {
		return fmt.Errorf("table %s: keys are not (pk, sk): %w", aws.ToString(t.TableName), ErrTableSchema)
	}
	for _, g := range t.GlobalSecondaryIndexes {
		if aws.ToString(g.IndexName) == ExpiryIndex {
			if !sameKeys(g.KeySchema, aShard, aExpiry) {
				return fmt.Errorf("table %s: index %s keys are not (shard, expiry): %w", aws.ToString(t.TableName), ExpiryIndex, ErrTableSchema)
			}
			return nil
		}
	}
	return fmt.Errorf("table %s: no index %s: %w", aws.ToString(t.TableName), ExpiryIndex, ErrTableSchema)
}

func sameKeys(ks []types.KeySchemaElement, hash, rng string) bool {
	if len(ks) != 2 {
		return false
	}
	for _, k := range ks {
		switch k.KeyType {
		case types.KeyTypeHash:
			if aws.ToString(k.AttributeName) != hash {
				return false
			}
		case types.KeyTypeRange:
			if aws.ToString(k.AttributeName) != rng {
				return false
			}
		}
	}
	return true
}

// enableTTL turns DynamoDB's TTL on for the ttl attribute unless it is on
// (or being turned on) already.
func (s *Store) enableTTL(ctx context.Context) error {
	d, err := s.db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: s.table})
	if err != nil {
		if unknownOperation(err) {
			return nil
		}
		return err
	}
	if st := d.TimeToLiveDescription; st != nil && aws.ToString(st.AttributeName) != "" &&
		(st.TimeToLiveStatus == types.TimeToLiveStatusEnabled || st.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil // on, perhaps on another attribute: the user's choice
	}
	_, err = s.db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               s.table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(aTTL), Enabled: aws.Bool(true)},
	})
	if err != nil && !unknownOperation(err) && !ttlRace(err) {
		return err
	}
	return nil
}

// unknownOperation reports a server without the operation (dynalite has no
// UpdateTimeToLive).
func unknownOperation(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "UnknownOperationException"
}

// ttlRace reports the error of a concurrent UpdateTimeToLive that enabled
// TTL first ("TimeToLive is already enabled").
func ttlRace(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ValidationException" &&
		strings.Contains(strings.ToLower(ae.ErrorMessage()), "already enabled")
}
