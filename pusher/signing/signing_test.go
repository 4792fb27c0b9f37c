package signing

import (
	"errors"
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
	sigs := AddSignature(nil, Sign(a, d))
	sigs = AddSignature(sigs, Sign(b, d))
	sigs = AddSignature(sigs, Sign(a, d)) // replaces, does not duplicate

	tests := []struct {
		name    string
		d       images.Digest
		sigs    []byte
		trusted []PublicKey
		ok      bool
	}{
		{"trusted signer", d, sigs, []PublicKey{pa}, true},
		{"second signer trusted", d, sigs, []PublicKey{b.Public()}, true},
		{"untrusted signer", d, []byte(Sign(b, d)), []PublicKey{pa}, false},
		{"other image", other, sigs, []PublicKey{pa}, false},
		{"unsigned", d, nil, []PublicKey{pa}, false},
		{"no trusted keys", d, sigs, nil, false},
		{"garbage", d, []byte("hello world\n"), []PublicKey{pa}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.d, tt.sigs, tt.trusted)
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
	f.Add([]byte(Sign(k, d)))
	f.Fuzz(func(t *testing.T, b []byte) {
		Verify(d, b, []PublicKey{k.Public()})
	})
}
