package dynamostore_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sessionkit/sessions/dynamostore"
)

// The benchmarks run each store operation and, as its floor, the same
// DynamoDB requests written by hand with the SDK (impl=raw), in the same run
// and on the same table. impl=paired runs both in every iteration, in
// alternating order, and reports their ratio (store-ns/raw-ns):
//
//	go test -run '^$' -bench . -benchtime 2000x -count 3

// benchData is a typical encoded session of about a hundred bytes.
var benchData = fmt.Appendf(nil, `{"user":"u-1234567","csrf":"%064d","cart":[1,2,3],"theme":"dark"}`, 0)

// benchID returns the n-th benchmark id of a prefix.
func benchID(prefix string, n int) string {
	var buf [32]byte
	copy(buf[:], prefix)
	binary.BigEndian.PutUint64(buf[24:], uint64(n))
	sum := sha256.Sum256(buf[:])
	return hex.EncodeToString(sum[:])
}

func s(v string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func rawKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s("s#" + id), "sk": s("s")}
}

type benchOp struct {
	name       string
	store, raw func(i int) error
}

func benchOps(b *testing.B, st *dynamostore.Store, c *dynamodb.Client, table string) []benchOp {
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	exp := now.Add(time.Hour)
	nowMS, expMS := now.UnixMilli(), exp.UnixMilli()
	ttl := exp.Add(dynamostore.DefaultTTLMargin).Unix()
	const owner = "bench-owner"

	// One long-lived record per impl for Load, Update and Touch, written by
	// the store so both have the same shape.
	storeID, rawID := benchID("store", 0), benchID("raw", 0)
	for _, id := range []string{storeID, rawID} {
		if ok, err := st.Create(ctx, id, benchData, exp, owner, now); err != nil || !ok {
			b.Fatalf("seed: %v, %v", ok, err)
		}
	}
	var storeVersion, rawVersion int64 = 1, 1
	var storeCreates, rawCreates int
	var storeTouches, rawTouches int64 // each Touch moves the expiry 1 ms later
	check := func(ok bool, what string) error {
		if !ok {
			return fmt.Errorf("%s: unexpected result", what)
		}
		return nil
	}
	createRaw := func(id, owner string) error {
		item := map[string]types.AttributeValue{
			"pk": s("s#" + id), "sk": s("s"), "version": n(1), "expiry": n(expMS), "ttl": n(ttl),
			"shard": s(id[:1]), "data": &types.AttributeValueMemberB{Value: benchData},
		}
		if owner != "" {
			nonce := benchID("nonce", rawCreates)[:16]
			if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: map[string]types.AttributeValue{
				"pk": s("o#" + owner), "sk": s(id + "#" + nonce),
			}}); err != nil {
				return err
			}
			item["owner"], item["nonce"] = s(owner), s(nonce)
		}
		_, err := c.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                 &table,
			Item:                      item,
			ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #e <= :now"),
			ExpressionAttributeNames:  map[string]string{"#pk": "pk", "#e": "expiry"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": n(nowMS)},
			ReturnValues:              types.ReturnValueAllOld,
		})
		return err
	}
	return []benchOp{
		{
			name: "Load",
			store: func(int) error {
				_, _, _, found, err := st.Load(ctx, storeID, now)
				if err != nil {
					return err
				}
				return check(found, "load")
			},
			raw: func(int) error {
				out, err := c.GetItem(ctx, &dynamodb.GetItemInput{
					TableName: &table, Key: rawKey(rawID), ConsistentRead: aws.Bool(true),
					ProjectionExpression:     aws.String("#d, #v, #e, #g, #c"),
					ExpressionAttributeNames: map[string]string{"#d": "data", "#v": "version", "#e": "expiry", "#g": "chunkset", "#c": "chunks"},
				})
				if err != nil {
					return err
				}
				return check(out.Item != nil, "load")
			},
		},
		{
			name: "Update",
			store: func(int) error {
				updated, _, err := st.Update(ctx, storeID, storeVersion, benchData, exp, owner, now)
				storeVersion++
				if err != nil {
					return err
				}
				return check(updated, "update")
			},
			raw: func(int) error {
				_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
					TableName: &table, Key: rawKey(rawID),
					UpdateExpression:    aws.String("SET #v = :v1, #e = :e, #t = :t, #d = :d"),
					ConditionExpression: aws.String("#v = :v AND #e > :now AND attribute_not_exists(#g) AND #o = :o"),
					ExpressionAttributeNames: map[string]string{
						"#v": "version", "#e": "expiry", "#t": "ttl", "#d": "data", "#g": "chunkset", "#o": "owner",
					},
					ExpressionAttributeValues: map[string]types.AttributeValue{
						":v": n(rawVersion), ":v1": n(rawVersion + 1), ":e": n(expMS), ":t": n(ttl), ":now": n(nowMS),
						":d": &types.AttributeValueMemberB{Value: benchData}, ":o": s(owner),
					},
					ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
				})
				rawVersion++
				return err
			},
		},
		{
			name: "Touch",
			store: func(int) error {
				storeTouches++
				found, err := st.Touch(ctx, storeID, exp.Add(time.Duration(storeTouches)*time.Millisecond), now)
				if err != nil {
					return err
				}
				return check(found, "touch")
			},
			raw: func(int) error {
				rawTouches++
				e := expMS + rawTouches
				_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
					TableName: &table, Key: rawKey(rawID),
					UpdateExpression:         aws.String("SET #e = :e, #t = :t"),
					ConditionExpression:      aws.String("#e > :now AND #e < :e"),
					ExpressionAttributeNames: map[string]string{"#e": "expiry", "#t": "ttl"},
					ExpressionAttributeValues: map[string]types.AttributeValue{
						":e": n(e), ":t": n(time.UnixMilli(e).Add(dynamostore.DefaultTTLMargin + time.Second - 1).Unix()), ":now": n(nowMS),
					},
					ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
				})
				return err
			},
		},
		{
			name: "Create",
			store: func(int) error {
				storeCreates++
				created, err := st.Create(ctx, benchID("create-store", storeCreates), benchData, exp, "", now)
				if err != nil {
					return err
				}
				return check(created, "create")
			},
			raw: func(int) error {
				rawCreates++
				return createRaw(benchID("create-raw", rawCreates), "")
			},
		},
		{
			name: "CreateOwned",
			store: func(int) error {
				storeCreates++
				created, err := st.Create(ctx, benchID("create-store", storeCreates), benchData, exp, owner, now)
				if err != nil {
					return err
				}
				return check(created, "create")
			},
			raw: func(int) error {
				rawCreates++
				return createRaw(benchID("create-raw", rawCreates), owner)
			},
		},
	}
}

func BenchmarkStore(b *testing.B) {
	st, c, table := newStore(b, nil)
	for _, op := range benchOps(b, st, c, table) {
		b.Run(op.name+"/impl=store", func(b *testing.B) { loop(b, op.store) })
		b.Run(op.name+"/impl=raw", func(b *testing.B) { loop(b, op.raw) })
		b.Run(op.name+"/impl=paired", func(b *testing.B) {
			var storeTime, rawTime time.Duration
			i := 0
			for b.Loop() {
				i++
				first, second := op.store, op.raw
				firstTime, secondTime := &storeTime, &rawTime
				if i%2 == 0 {
					first, second = second, first
					firstTime, secondTime = secondTime, firstTime
				}
				start := time.Now()
				if err := first(i); err != nil {
					b.Fatal(err)
				}
				mid := time.Now()
				if err := second(i); err != nil {
					b.Fatal(err)
				}
				*firstTime += mid.Sub(start)
				*secondTime += time.Since(mid)
			}
			b.ReportMetric(float64(storeTime)/float64(rawTime), "store/raw")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// loop runs f once per benchmark iteration, numbering the calls from 1.
func loop(b *testing.B, f func(i int) error) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := f(i); err != nil {
			b.Fatal(err)
		}
	}
}
