package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCA: a second InitCA over an existing CA is refused and leaves it as
// it was; keys are written 0600; an agent and a controller certificate from
// the CA complete a mutual-TLS handshake.
func TestCA(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	if err := InitCA(ca, "test fleet"); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(ca, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := InitCA(ca, "again"); err == nil {
		t.Fatal("second InitCA over an existing CA succeeded")
	}
	after, _ := os.ReadFile(filepath.Join(ca, CAKeyFile))
	if string(after) != string(before) {
		t.Fatal("second InitCA changed the CA key")
	}
	// A key file made meanwhile by someone else is not overwritten either.
	other := filepath.Join(dir, "other")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeCertKey(filepath.Join(other, CACertFile), filepath.Join(ca, CAKeyFile), nil, mustKey(t), true); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("exclusive key write over an existing key: %v, want ErrExist", err)
	}

	sc, sk, err := IssueCert(ca, filepath.Join(dir, "agent"), "agent1", RoleAgent, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cc, ck, err := IssueCert(ca, filepath.Join(dir, "ctl"), "ctl", RoleController, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{sk, ck, filepath.Join(ca, CAKeyFile)} {
		fi, err := os.Stat(k)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", k, fi.Mode().Perm())
		}
	}
	sconf, err := ServerTLS(filepath.Join(ca, CACertFile), sc, sk)
	if err != nil {
		t.Fatal(err)
	}
	cconf, err := ClientTLS(filepath.Join(ca, CACertFile), cc, ck)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", sconf)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			err = c.(*tls.Conn).Handshake()
			c.Close()
		}
		done <- err
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), cconf)
	if err != nil {
		t.Fatalf("controller → agent handshake: %v", err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("agent side of the handshake: %v", err)
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
