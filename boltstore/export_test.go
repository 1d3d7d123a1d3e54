package boltstore

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// CheckIndexes verifies that the expiry index holds exactly one entry per
// record, at the record's expiry, and the owner index exactly one entry per
// owned record, under its owner, and that neither holds anything else.
func (s *Store) CheckIndexes() error {
	return s.db.View(func(tx *bbolt.Tx) error {
		b, err := s.buckets(tx)
		if err != nil {
			return err
		}
		wantExpiry, wantOwner := map[string]bool{}, map[string]bool{}
		err = b.records.ForEach(func(k, v []byte) error {
			r, err := decodeRecord(v)
			if err != nil {
				return err
			}
			wantExpiry[string(expiryKey(r.expiry, k))] = true
			if len(r.owner) > 0 {
				wantOwner[string(ownerKey(r.owner, k))] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, ix := range []struct {
			name string
			b    *bbolt.Bucket
			want map[string]bool
		}{{"expiry", b.expiry, wantExpiry}, {"owner", b.owners, wantOwner}} {
			err := ix.b.ForEach(func(k, v []byte) error {
				if !ix.want[string(k)] {
					return fmt.Errorf("%s index: entry %x matches no record", ix.name, k)
				}
				if len(v) != 0 {
					return fmt.Errorf("%s index: entry %x has a value", ix.name, k)
				}
				delete(ix.want, string(k))
				return nil
			})
			if err != nil {
				return err
			}
			for k := range ix.want {
				return fmt.Errorf("%s index: no entry %x for its record", ix.name, []byte(k))
			}
		}
		return nil
	})
}

// Raw runs fn on the store's buckets in a write transaction, for tests
// that plant what other code could write into the file.
func (s *Store) Raw(fn func(records, expiry, owners *bbolt.Bucket) error) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := s.buckets(tx)
		if err != nil {
			return err
		}
		return fn(b.records, b.expiry, b.owners)
	})
}

// EncodeRecord, ExpiryKey and OwnerKey expose the layout to tests and
// benchmarks.
func EncodeRecord(expiry, version int64, owner string, data []byte) []byte {
	return encodeRecord(expiry, version, owner, data)
}

func ExpiryKey(expiry int64, key []byte) []byte { return expiryKey(expiry, key) }

func OwnerKey(owner string, key []byte) []byte { return ownerKey([]byte(owner), key) }

// Bucket names, for tests and benchmarks that go straight to bbolt.
var (
	RecordsName = recordsName
	ExpiryName  = expiryName
	OwnersName  = ownersName
)
