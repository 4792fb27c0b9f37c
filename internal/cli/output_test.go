package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// failAfter accepts n bytes, then fails every write.
type failAfter struct {
	n   int
	buf bytes.Buffer
}

var errFull = errors.New("no space left on device")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.buf.Len()+len(p) > f.n {
		return 0, errFull
	}
	return f.buf.Write(p)
}

func TestOutputKeepsFirstError(t *testing.T) {
	w := &failAfter{n: 6}
	o := NewOutput(w)
	o.Printf("%s\n", "hello")
	o.Println("world")
	o.Println("again")
	if !errors.Is(o.Err(), errFull) {
		t.Fatalf("Err = %v, want %v", o.Err(), errFull)
	}
	if w.buf.String() != "hello\n" {
		t.Errorf("written %q, want only what came before the failure", w.buf.String())
	}
	if NewOutput(o) != o {
		t.Error("NewOutput of an Output wraps it again")
	}
}

func TestTableFlushReportsError(t *testing.T) {
	var b bytes.Buffer
	tw := NewTable(&b, 0, 4, 2)
	tw.Println("A\tBB")
	tw.Printf("%s\t%s\n", "ccc", "d")
	if err := tw.Flush(); err != nil || b.String() != "A    BB\nccc  d\n" {
		t.Fatalf("table %q, %v", b.String(), err)
	}
	tw = NewTable(&failAfter{}, 0, 4, 2)
	tw.Println("A\tB")
	if err := tw.Flush(); !errors.Is(err, errFull) {
		t.Fatalf("Flush = %v, want %v", err, errFull)
	}
}

func init() {
	Register(func(a *App) *cobra.Command {
		return &cobra.Command{Use: "test-print", Hidden: true, RunE: func(*cobra.Command, []string) error {
			for i := range 100 {
				a.Printf("line %d\n", i)
			}
			return nil
		}}
	})
}

// TestExecuteReportsFailedOutput: a command whose standard output cannot
// be written fails with exit code 2 and says so, rather than exiting 0
// with a short report.
func TestExecuteReportsFailedOutput(t *testing.T) {
	for _, tc := range []struct {
		limit    int
		wantCode int
	}{{1 << 20, ExitOK}, {100, ExitError}} {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			out := &failAfter{n: tc.limit}
			var stderr bytes.Buffer
			a := &App{Stdout: out, Stderr: &stderr, Args: []string{"test-print"}}
			code := a.Execute(context.Background())
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.wantCode, stderr.String())
			}
			if tc.wantCode == ExitError && !strings.Contains(stderr.String(), "ingot: writing standard output: no space left on device") {
				t.Errorf("stderr %q does not name the failed write", stderr.String())
			}
			if a.Stdout != out {
				t.Error("Execute did not give back the App's own Stdout")
			}
		})
	}
}
