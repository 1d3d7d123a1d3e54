// Command ferretdb runs FerretDB (a MongoDB wire-protocol server) for the
// mongostore tests, through FerretDB's embeddable package: its own
// cmd/ferretdb panics at start when built with go install.
//
//	go build -o ferretdb .
//	./ferretdb -listen 127.0.0.1:27017 -postgresql-url postgres://postgres@127.0.0.1:5432/ferretdb
//
// It keeps its data in PostgreSQL (the database must exist; FerretDB makes a
// schema per MongoDB database in it), or with -handler sqlite in SQLite
// files under -dir, one per database, without fsync at commit. The
// PostgreSQL handler is the default because FerretDB v1 pushes filters down
// to PostgreSQL (an update filtered on _id and version is an index lookup
// there), while its SQLite handler pushes down only a filter on _id alone and
// scans the whole collection for anything else.
//
// # Serialized writes
//
// FerretDB v1 applies a filtered update, findAndModify or delete in two
// steps: it reads the matching documents, then writes them back (or deletes
// them) by _id without checking the filter again. Two concurrent
// compare-and-set updates of one document can therefore both succeed, which
// MongoDB never allows (a write to one document is atomic there). So that the
// store's tests see MongoDB's per-document atomicity, FerretDB listens on a
// Unix socket of its own and this program serves -listen with a proxy that
// lets one write command (insert, update, delete, findAndModify) per
// collection through at a time, across all connections; writes to other
// collections, reads and everything else pass concurrently.
// -serialize-writes=false turns this off, to show the difference.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/bson"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to serve")
	handler := flag.String("handler", "postgresql", "FerretDB handler: postgresql or sqlite")
	pgURL := flag.String("postgresql-url", "postgres://postgres@127.0.0.1:5432/ferretdb", "PostgreSQL database for -handler postgresql")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "sessionkit-ferretdb"), "directory for the Unix socket, and the data of -handler sqlite")
	serialize := flag.Bool("serialize-writes", true, "let one write command through at a time (see the package doc)")
	logLevel := flag.String("log-level", "error+1", "FerretDB log level (debug, info, warn, error, error+1: only panics; FerretDB logs every duplicate key at error)")
	check := flag.String("check", "", "only send a ping to this address and exit 0 if it answers ok")
	flag.Parse()

	if *check != "" {
		if err := ping(*check); err != nil {
			log.Fatalf("ferretdb: ping %s: %v", *check, err)
		}
		return
	}

	if err := run(*listen, *handler, *pgURL, *dir, *serialize, *logLevel); err != nil {
		log.Fatalf("ferretdb: %v", err)
	}
}

func run(listen, handler, pgURL, dir string, serialize bool, logLevel string) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	sock := filepath.Join(abs, "ferretdb.sock")
	_ = os.Remove(sock) // left by a killed instance

	// Bind the public address first, so that a second instance fails here
	// before it touches the data directory.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	defer ln.Close()

	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{Unix: sock},
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Handler:  handler,
	}
	where := pgURL
	switch handler {
	case "postgresql":
		cfg.PostgreSQLURL = pgURL
	case "sqlite":
		// Test data need no durability: no fsync at commit.
		cfg.SQLiteURL = "file:" + abs + "/?_pragma=synchronous(OFF)"
		where = abs
	default:
		return fmt.Errorf("-handler %q: want postgresql or sqlite", handler)
	}
	f, err := ferretdb.New(cfg)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()

	p := &proxy{sock: sock, serialize: serialize}
	log.Printf("ferretdb: serving %s (%s handler on %s, serialized writes: %v)", ln.Addr(), handler, where, serialize)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		go p.serve(ctx, c)
	}
	<-done
	return nil
}

// proxy forwards client connections to FerretDB's Unix socket, one
// upstream connection per client connection.
type proxy struct {
	sock      string
	serialize bool

	mu     sync.Mutex
	writes map[string]*sync.Mutex // by namespace: held by the write in flight
}

// lock returns the write lock of the namespace ns, creating it.
func (p *proxy) lock(ns string) *sync.Mutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.writes == nil {
		p.writes = map[string]*sync.Mutex{}
	}
	l := p.writes[ns]
	if l == nil {
		l = new(sync.Mutex)
		p.writes[ns] = l
	}
	return l
}

// OP_MSG (opcode 2013) flag bits.
const (
	opMsg          = 2013
	flagMoreToCome = 1 << 1
)

// maxMessage bounds a wire message (MongoDB's maxMessageSizeBytes).
const maxMessage = 48_000_000

func (p *proxy) serve(ctx context.Context, client net.Conn) {
	defer client.Close()
	var d net.Dialer
	up, err := d.DialContext(ctx, "unix", p.sock)
	if err != nil {
		log.Printf("ferretdb: proxy: %v", err)
		return
	}
	defer up.Close()

	if !p.serialize {
		go func() { _, _ = io.Copy(client, up); client.Close() }()
		_, _ = io.Copy(up, client)
		return
	}

	// Requests and replies alternate on a connection (the driver uses no
	// exhaust cursors here): forward a request, then, unless it asked for
	// no reply, forward exactly one reply. A write holds the lock from its
	// request until its reply.
	for {
		req, err := readMessage(client)
		if err != nil {
			return
		}
		var l *sync.Mutex
		if ns, ok := writeNamespace(req); ok {
			l = p.lock(ns)
			l.Lock()
		}
		err = p.roundTrip(client, up, req)
		if l != nil {
			l.Unlock()
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) roundTrip(client, up net.Conn, req []byte) error {
	if _, err := up.Write(req); err != nil {
		return err
	}
	if opcode(req) == opMsg && binary.LittleEndian.Uint32(req[16:])&flagMoreToCome != 0 {
		return nil // the client expects no reply
	}
	reply, err := readMessage(up)
	if err != nil {
		return err
	}
	_, err = client.Write(reply)
	return err
}

// readMessage reads one wire-protocol message (a 16-byte header whose first
// field is the total length).
func readMessage(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.LittleEndian.Uint32(hdr[:])))
	if n < 16 || n > maxMessage {
		return nil, fmt.Errorf("bad message length %d", n)
	}
	msg := make([]byte, n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[4:]); err != nil {
		return nil, err
	}
	return msg, nil
}

func opcode(msg []byte) int32 { return int32(binary.LittleEndian.Uint32(msg[12:])) }

// writeNamespace reports whether msg is an OP_MSG whose command (the first
// key of its body section) writes documents, and the namespace
// ("db.collection") it writes to.
func writeNamespace(msg []byte) (string, bool) {
	if opcode(msg) != opMsg || len(msg) < 21 {
		return "", false
	}
	// Sections follow the flag bits; the body (kind 0) is one BSON
	// document, a document sequence (kind 1) is a size and its contents.
	b := msg[20:]
	for len(b) > 5 {
		kind := b[0]
		size := int(int32(binary.LittleEndian.Uint32(b[1:])))
		if size < 5 || size > len(b)-1 {
			return "", false
		}
		if kind == 0 {
			body := bson.Raw(b[1 : 1+size])
			first, err := body.IndexErr(0)
			if err != nil || !isWriteCommand(first.Key()) {
				return "", false
			}
			coll, _ := first.Value().StringValueOK()
			db, _ := body.Lookup("$db").StringValueOK()
			return db + "." + coll, true
		}
		b = b[1+size:]
	}
	return "", false
}

func isWriteCommand(name string) bool {
	switch strings.ToLower(name) {
	case "insert", "update", "delete", "findandmodify":
		return true
	}
	return false
}

// ping sends {ping: 1, $db: "admin"} as an OP_MSG to addr and checks that
// the reply carries ok: 1.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))

	var doc []byte
	doc = binary.LittleEndian.AppendUint32(doc, 0) // length, set below
	doc = append(doc, 0x10)                        // int32
	doc = append(doc, "ping\x00"...)
	doc = binary.LittleEndian.AppendUint32(doc, 1)
	doc = append(doc, 0x02) // string
	doc = append(doc, "$db\x00"...)
	doc = binary.LittleEndian.AppendUint32(doc, uint32(len("admin")+1))
	doc = append(doc, "admin\x00"...)
	doc = append(doc, 0)
	binary.LittleEndian.PutUint32(doc, uint32(len(doc)))

	var msg []byte
	msg = binary.LittleEndian.AppendUint32(msg, uint32(16+4+1+len(doc)))
	msg = binary.LittleEndian.AppendUint32(msg, 1) // requestID
	msg = binary.LittleEndian.AppendUint32(msg, 0) // responseTo
	msg = binary.LittleEndian.AppendUint32(msg, opMsg)
	msg = binary.LittleEndian.AppendUint32(msg, 0) // flag bits
	msg = append(msg, 0)                           // section kind 0
	msg = append(msg, doc...)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	reply, err := readMessage(c)
	if err != nil {
		return err
	}
	// The reply body holds "ok" as a double; 1.0 is 0x3ff0000000000000.
	okOne := append([]byte("\x01ok\x00"), 0, 0, 0, 0, 0, 0, 0xf0, 0x3f)
	if !bytes.Contains(reply, okOne) {
		return fmt.Errorf("unexpected reply %q", reply)
	}
	return nil
}
