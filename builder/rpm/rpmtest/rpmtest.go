// Package rpmtest writes and reads cpio members for tests of RPM payloads.
package rpmtest

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/ingotfleet/ingot/builder/rpm"
)

// NewcMember writes one SVR4 newc cpio member.
func NewcMember(name string, mode uint32, data []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	b.WriteString(name + "\x00")
	return cpioPadded(&b, data)
}

// StrippedMember writes one of rpm's stripped "07070X" members.
func StrippedMember(index int, data []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "07070X%08x", index)
	return cpioPadded(&b, data)
}

// cpioPadded pads the header in b to 4 bytes, then appends data padded
// the same way.
func cpioPadded(b *bytes.Buffer, data []byte) []byte {
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	b.Write(data)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	return b.Bytes()
}

// EachMember calls fn with each member of cr and its data up to the
// trailer, failing t on a read error.
func EachMember(t testing.TB, cr *rpm.CpioReader, fn func(h *rpm.CpioHeader, data []byte)) {
	t.Helper()
	for {
		h, err := cr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(cr)
		if err != nil {
			t.Fatal(err)
		}
		fn(h, data)
	}
}
