package rpm_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/rpm"
	"github.com/ingotfleet/ingot/builder/rpm/rpmtest"
)

// TestCpioStripped reads a stripped archive as rpm ≥ 4.12 writes it for
// large files: sizes come from the RPM header, by file index.
func TestCpioStripped(t *testing.T) {
	sizes := map[int]int64{0: 5, 1: 0, 2: 3}
	var arc bytes.Buffer
	arc.Write(rpmtest.StrippedMember(0, []byte("hello")))
	arc.Write(rpmtest.StrippedMember(1, nil))
	arc.Write(rpmtest.StrippedMember(2, []byte("abc")))
	arc.Write(rpmtest.NewcMember("TRAILER!!!", 0, nil))
	cr := rpm.NewCpioReader(bytes.NewReader(arc.Bytes()), func(i int) (int64, error) {
		s, ok := sizes[i]
		if !ok {
			return 0, fmt.Errorf("no file %d", i)
		}
		return s, nil
	})
	var got []string
	rpmtest.EachMember(t, cr, func(h *rpm.CpioHeader, data []byte) {
		got = append(got, fmt.Sprintf("%d=%s", h.Index, data))
	})
	if strings.Join(got, ",") != "0=hello,1=,2=abc" {
		t.Errorf("got %v", got)
	}
	// A file index the header does not have is an error.
	cr = rpm.NewCpioReader(bytes.NewReader(rpmtest.StrippedMember(7, nil)), func(i int) (int64, error) { return 0, fmt.Errorf("no file %d", i) })
	if _, err := cr.Next(); !errors.Is(err, rpm.ErrBadCpio) {
		t.Errorf("bad index: %v", err)
	}
}

func TestCpioNewc(t *testing.T) {
	var arc bytes.Buffer
	arc.Write(rpmtest.NewcMember("./a", 0o100644, []byte("12345")))
	arc.Write(rpmtest.NewcMember("./b", 0o040755, nil))
	arc.Write(rpmtest.NewcMember("TRAILER!!!", 0, nil))
	for _, cut := range []int{arc.Len(), arc.Len() - 130, 50, 3} {
		cr := rpm.NewCpioReader(bytes.NewReader(arc.Bytes()[:cut]), nil)
		var names []string
		var err error
		for {
			var h *rpm.CpioHeader
			h, err = cr.Next()
			if err != nil {
				break
			}
			names = append(names, h.Name)
		}
		if cut == arc.Len() {
			if err != io.EOF || strings.Join(names, ",") != "./a,./b" {
				t.Errorf("full archive: %v %v", names, err)
			}
		} else if !errors.Is(err, rpm.ErrBadCpio) {
			t.Errorf("cut at %d: %v, want rpm.ErrBadCpio", cut, err)
		}
	}
}
