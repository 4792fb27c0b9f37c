package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
)

func TestSignVerify(t *testing.T) {
	a, _ := Generate("alice")
	b, _ := Generate("bob")
	d := images.Sum([]byte("manifest A"))
	other := images.Sum([]byte("manifest B"))

	pa, err := ParsePublicKey(a.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	ra, err := ParsePrivateKey(a.String())
	if err != nil || !ra.Key.Equal(a.Key) || ra.Comment != "alice" {
		t.Fatalf("private key round trip: %v", err)
	}
	prod := Statement{Ref: "app:prod", Generation: 200}
	sigs := AddSignature(nil, Sign(a, d, Statement{Ref: "app:prod", Generation: 100}))
	sigs = AddSignature(sigs, Sign(b, d, prod))
	sigs = AddSignature(sigs, Sign(a, d, prod)) // replaces, does not duplicate
	if n := strings.Count(string(sigs), "\n"); n != 2 {
		t.Errorf("signature file of two signers of one name has %d lines:\n%s", n, sigs)
	}
	// The same key for another name: a line of its own.
	if n := strings.Count(string(AddSignature(sigs, Sign(a, d, Statement{Ref: "app:stable", Generation: 300}))), "\n"); n != 3 {
		t.Errorf("a second name by the same key: %d lines, want 3", n)
	}
	// The digest, the name and the generation are all signed: a line with
	// any of them changed does not verify.
	line := Sign(a, d, prod)
	forged := []string{
		strings.Replace(line, " app:prod ", " app:canary ", 1),
		strings.Replace(line, " 200 ", " 900 ", 1),
	}
	// The first format (digest only) is refused, by its own error.
	v1 := "ingot-signature-v1 " + a.Public().ID() + " " + base64.StdEncoding.EncodeToString(ed25519.Sign(a.Key, []byte("ingot image signature v1\nsha256:"+d.String()+"\n"))) + "\n"
	if _, err := Verify(d, []byte(v1), []PublicKey{pa}); !errors.Is(err, ErrOldFormat) || !errors.Is(err, ErrUntrusted) {
		t.Errorf("v1 signature: err = %v, want ErrOldFormat and ErrUntrusted", err)
	}
	if got := AddSignature([]byte(v1), line); strings.Contains(string(got), "ingot-signature-v1") {
		t.Errorf("signing again kept the v1 line of the same key:\n%s", got)
	}

	tests := []struct {
		name    string
		d       images.Digest
		sigs    []byte
		trusted []PublicKey
		ok      bool
	}{
		{"trusted signer", d, sigs, []PublicKey{pa}, true},
		{"second signer trusted", d, sigs, []PublicKey{b.Public()}, true},
		{"untrusted signer", d, []byte(Sign(b, d, prod)), []PublicKey{pa}, false},
		{"other image", other, sigs, []PublicKey{pa}, false},
		{"unsigned", d, nil, []PublicKey{pa}, false},
		{"no trusted keys", d, sigs, nil, false},
		{"garbage", d, []byte("hello world\n"), []PublicKey{pa}, false},
		{"other name", d, []byte(forged[0]), []PublicKey{pa}, false},
		{"other generation", d, []byte(forged[1]), []PublicKey{pa}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Verify(tt.d, tt.sigs, tt.trusted)
			if err == nil && (len(got) != 1 || got[0].Statement != prod) {
				t.Errorf("Verify = %+v, want the one statement %+v", got, prod)
			}
			if (err == nil) != tt.ok {
				t.Fatalf("Verify: err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && tt.name != "garbage" && !errors.Is(err, ErrUntrusted) {
				t.Errorf("error %v does not wrap ErrUntrusted", err)
			}
		})
	}
}

func FuzzParsePublicKeys(f *testing.F) {
	k, _ := Generate("x")
	f.Add([]byte(k.Public().String() + "\n# comment\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParsePublicKeys(b)
		if err != nil {
			return
		}
		for _, k := range keys {
			if _, err := ParsePublicKey(k.String()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzVerify(f *testing.F) {
	k, _ := Generate("x")
	d := images.Sum([]byte("m"))
	f.Add([]byte(Sign(k, d, Statement{Ref: "app:prod", Generation: 1765000000000000000})))
	f.Add([]byte("ingot-signature-v1 0011223344556677 AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		signed, err := Verify(d, b, []PublicKey{k.Public()})
		if err == nil && len(signed) == 0 {
			t.Fatal("Verify accepted a file without a statement")
		}
		for _, s := range signed {
			if s.Check() != nil {
				t.Fatalf("Verify accepted a bad statement %+v", s.Statement)
			}
			// What verifies is exactly what Sign writes for it.
			if !strings.Contains(string(b), " "+s.Ref+" "+strconv.FormatUint(s.Generation, 10)+" ") {
				t.Fatalf("statement %+v is not in the file as written", s.Statement)
			}
		}
	})
}
