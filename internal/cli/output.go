package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"text/tabwriter"

	"golang.org/x/sys/unix"
)

// Output is a writer that remembers its first error and writes nothing
// after it. Commands print their reports through one with Printf and
// Println, which return nothing, and check Err once at the end instead of
// after every line; Execute does that for standard output, so a full disk
// or a closed pipe fails the command with an error and exit code 2 rather
// than leaving a silently short report. It is safe for concurrent use.
type Output struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewOutput is an Output writing to w; w itself when it is one already.
func NewOutput(w io.Writer) *Output {
	if o, ok := w.(*Output); ok {
		return o
	}
	return &Output{w: w}
}

// Write writes p unless an earlier write failed; it returns the first
// error as every later call's error.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	o.err = err
	return n, err
}

// Printf writes like fmt.Fprintf; an error is kept for Err.
func (o *Output) Printf(format string, args ...any) {
	_, _ = fmt.Fprintf(o, format, args...) // kept in o.err
}

// Println writes like fmt.Fprintln; an error is kept for Err.
func (o *Output) Println(args ...any) {
	_, _ = fmt.Fprintln(o, args...) // kept in o.err
}

// Err is the first write error, nil if every write succeeded.
func (o *Output) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// IsTerminal reports whether w (or what the Outputs around it write to)
// is a terminal.
func IsTerminal(w io.Writer) bool {
	for {
		o, ok := w.(*Output)
		if !ok {
			break
		}
		w = o.w
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Close closes c and keeps its error in *err unless *err already holds
// one; for `defer cli.Close(&err, s)` in a function with a named error
// result.
func Close(err *error, c io.Closer) {
	if cerr := c.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
}

// Printf prints to the command's standard output. A write error is kept
// (App.Stdout is an Output while Execute runs) and Execute reports it.
func (a *App) Printf(format string, args ...any) { NewOutput(a.Stdout).Printf(format, args...) }

// Println prints a line to the command's standard output, as Printf.
func (a *App) Println(args ...any) { NewOutput(a.Stdout).Println(args...) }

// Table is a text table (a tabwriter.Writer, cells separated by tabs,
// padded with spaces) printed with Printf and Println; Flush writes it
// out and returns the first error.
type Table struct {
	*Output
	tw *tabwriter.Writer
}

// NewTable is a Table writing to w with tabwriter's minwidth, tabwidth
// and padding.
func NewTable(w io.Writer, minwidth, tabwidth, padding int) *Table {
	tw := tabwriter.NewWriter(w, minwidth, tabwidth, padding, ' ', 0)
	return &Table{Output: NewOutput(tw), tw: tw}
}

// Flush writes the table out; the error is the first of any write.
func (t *Table) Flush() error {
	if err := t.Err(); err != nil {
		return err
	}
	return t.tw.Flush()
}
