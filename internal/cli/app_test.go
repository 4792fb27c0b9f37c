package cli

import "testing"

func TestStoreDirPrecedence(t *testing.T) {
	a := &App{Getenv: func(k string) string { return map[string]string{"INGOT_STORE": "/env/store"}[k] }}
	if got := a.StoreDir(); got != "/env/store" {
		t.Errorf("StoreDir with $INGOT_STORE = %q", got)
	}
	a.storeFlag = "/flag/store"
	if got := a.StoreDir(); got != "/flag/store" {
		t.Errorf("StoreDir with --store = %q", got)
	}
}
