package pgxstore

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TestDDLMatchesCreateTable keeps the exported DDL and the statements
// CreateTable runs for zero Options identical.
func TestDDLMatchesCreateTable(t *testing.T) {
	s, err := New((*pgxpool.Pool)(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.ddl, ";\n") + ";\n"; got != DDL {
		t.Errorf("CreateTable statements for zero Options:\n%s\nDDL constant:\n%s", got, DDL)
	}
}

func TestIDCodec(t *testing.T) {
	const id = "00ff10a9b8c7d6e5f4030201aabbccddeeff00112233445566778899abcdef01"
	key, ok := decodeID(id)
	if !ok || len(key) != 32 || key[0] != 0x00 || key[1] != 0xff || key[31] != 0x01 {
		t.Fatalf("decodeID = %x, %v", key, ok)
	}
	if got := encodeID(key); got != id {
		t.Errorf("encodeID(decodeID(id)) = %s", got)
	}
	for _, bad := range []string{"", id[:63], id + "0", strings.ToUpper(id), id[:63] + "g", id[:63] + "/", id[:63] + ":", id[:63] + "`"} {
		if _, ok := decodeID(bad); ok {
			t.Errorf("decodeID(%q) accepted", bad)
		}
	}
}

// TestPartitionedDDLMatchesCreateTable keeps PartitionedDDL and the
// statements CreateTable runs for Options{Partition: ...} identical.
func TestPartitionedDDLMatchesCreateTable(t *testing.T) {
	s, err := New((*pgxpool.Pool)(nil), &Options{Partition: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.ddl, ";\n") + ";\n"; got != PartitionedDDL {
		t.Errorf("CreateTable statements for Partition:\n%s\nPartitionedDDL constant:\n%s", got, PartitionedDDL)
	}
}
