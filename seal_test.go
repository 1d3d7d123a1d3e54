package sessions

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// sealVector is one test vector of the sealed cookie format
// (testdata/sealed-v1.json; docs/cookie-format.md).
type sealVector struct {
	Comment   string   `json:"comment"`
	Keys      []string `json:"keys"`       // hex; the first seals
	Name      string   `json:"name"`       // cookie name
	Purpose   string   `json:"purpose"`    // Options.Purpose
	Random    string   `json:"random"`     // hex: salt (16) || nonce (12)
	Plaintext string   `json:"plaintext"`  // hex
	Value     string   `json:"value"`      // the cookie value
	OpensWith int      `json:"opens_with"` // index of the key that opens it, -1: it must not open
}

func vectorKeyring(t *testing.T, keys []string) *keyring {
	var raw [][]byte
	for _, k := range keys {
		b, err := hex.DecodeString(k)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b)
	}
	kr, err := newKeyring(raw)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// TestSealedVectors pins format 1: every vector must seal to its value
// (when it has a plaintext and a random) and open as stated. Add vectors
// for a new format; never change these.
func TestSealedVectors(t *testing.T) {
	b, err := os.ReadFile("testdata/sealed-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []sealVector
	if err := json.Unmarshal(b, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) < 5 {
		t.Fatalf("only %d vectors", len(vectors))
	}
	for _, v := range vectors {
		t.Run(v.Comment, func(t *testing.T) {
			kr := vectorKeyring(t, v.Keys)
			pt, _ := hex.DecodeString(v.Plaintext)
			if v.OpensWith == 0 && v.Random != "" {
				random, _ := hex.DecodeString(v.Random)
				if got := kr.sealWith(v.Purpose, v.Name, pt, random); got != v.Value {
					t.Errorf("seal = %s, want %s", got, v.Value)
				}
			}
			got, i, err := kr.open(v.Purpose, v.Name, v.Value)
			switch {
			case v.OpensWith < 0 && err == nil:
				t.Errorf("opened with key %d, want no opening", i)
			case v.OpensWith >= 0 && (err != nil || i != v.OpensWith || !bytes.Equal(got, pt)):
				t.Errorf("open = %x, key %d, %v; want %s with key %d", got, i, err, v.Plaintext, v.OpensWith)
			}
		})
	}
}

// FuzzOpenSealed: no cookie value makes the opener panic, and whatever
// opens seals and opens again to the same plaintext.
func FuzzOpenSealed(f *testing.F) {
	kr, _ := newKeyring([][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)})
	f.Add(kr.seal("app", "session", []byte("hello")))
	f.Add(kr.seal("", "session", nil))
	f.Add("")
	f.Add("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, v string) {
		pt, _, err := kr.open("app", "session", v)
		if err != nil {
			if err != errUnsealed {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		again, _, err := kr.open("app", "session", kr.seal("app", "session", pt))
		if err != nil || !bytes.Equal(again, pt) {
			t.Fatalf("re-sealed plaintext does not open back: %v", err)
		}
	})
}
