package carry

import (
	"errors"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/pusher/agent"
)

func file(content string) *Version {
	return &Version{Entry: images.Entry{Type: images.TypeFile, Mode: 0o644, SHA256: images.Sum([]byte(content)), Size: int64(len(content))}, Content: []byte(content)}
}

func withMode(v *Version, m uint32) *Version { c := *v; c.Entry.Mode = m; return &c }

func link(target string) *Version {
	return &Version{Entry: images.Entry{Type: images.TypeSymlink, Mode: 0o777, Link: target}}
}

func TestMerge3(t *testing.T) {
	base := "a\nb\nc\nd\ne\n"
	for _, tc := range []struct {
		name              string
		base, host, image *Version
		policy            string
		action            Action
		conflict          bool
		merged            string
	}{
		{"unchanged everywhere", file(base), file(base), file(base), agent.PolicyFail, TakeImage, false, ""},
		{"image only", file(base), file(base), file("new\n"), agent.PolicyFail, TakeImage, false, ""},
		{"host only", file(base), file("mine\n"), file(base), agent.PolicyFail, KeepHost, false, ""},
		{"host only mode", file(base), withMode(file(base), 0o600), file(base), agent.PolicyFail, KeepHost, false, ""},
		{"same change", file(base), file("x\n"), file("x\n"), agent.PolicyFail, TakeImage, false, ""},
		{"host added", nil, file("mine\n"), nil, agent.PolicyFail, KeepHost, false, ""},
		{"image added", nil, nil, file("new\n"), agent.PolicyFail, TakeImage, false, ""},
		{"host removed", file(base), nil, file(base), agent.PolicyFail, KeepHost, false, ""},
		{"image removed", file(base), file(base), nil, agent.PolicyFail, TakeImage, false, ""},
		{"both changed, fail", file(base), file("h\n"), file("i\n"), agent.PolicyFail, Fail, true, ""},
		{"both changed, keep host", file(base), file("h\n"), file("i\n"), agent.PolicyKeepHost, KeepHost, true, ""},
		{"both changed, take image", file(base), file("h\n"), file("i\n"), agent.PolicyTakeImage, TakeImage, true, ""},
		{"both changed, lines apart", file(base), file("A\nb\nc\nd\ne\n"), file("a\nb\nc\nd\nE\n"), agent.PolicyMerge, WriteMerged, true, "A\nb\nc\nd\nE\n"},
		{"both changed, insert and delete", file(base), file("a\nb\nc\nd\ne\nhost\n"), file("b\nc\nd\ne\n"), agent.PolicyMerge, WriteMerged, true, "b\nc\nd\ne\nhost\n"},
		{"both changed, same lines", file(base), file("a\nB\nc\nd\ne\n"), file("a\nX\nc\nd\ne\n"), agent.PolicyMerge, Fail, true, ""},
		{"both changed, adjacent lines", file(base), file("a\nB\nc\nd\ne\n"), file("a\nb\nC\nd\ne\n"), agent.PolicyMerge, Fail, true, ""},
		{"both added, merge", nil, file("h\n"), file("i\n"), agent.PolicyMerge, Fail, true, ""},
		{"host removed, image changed", file(base), nil, file("i\n"), agent.PolicyMerge, Fail, true, ""},
		{"host removed, image changed, keep host", file(base), nil, file("i\n"), agent.PolicyKeepHost, KeepHost, true, ""},
		{"symlink retargeted on both", link("x"), link("h"), link("i"), agent.PolicyMerge, Fail, true, ""},
		{"symlink retargeted by host", link("x"), link("h"), link("x"), agent.PolicyFail, KeepHost, false, ""},
		{"file became symlink on host", file(base), link("h"), file(base), agent.PolicyFail, KeepHost, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Merge3("etc/x", tc.base, tc.host, tc.image, tc.policy)
			if d.Action != tc.action || d.Conflict != tc.conflict || string(d.Merged) != tc.merged {
				t.Fatalf("got %s conflict=%v merged=%q (%s); want %s conflict=%v merged=%q", d.Action, d.Conflict, d.Merged, d.Reason, tc.action, tc.conflict, tc.merged)
			}
			if d.Reason == "" {
				t.Fatal("no reason given")
			}
		})
	}
}

func TestMergeLines(t *testing.T) {
	base := "# sshd\nPort 22\nPermitRootLogin no\nX11Forwarding no\n"
	host := "# sshd\nPort 2222\nPermitRootLogin no\nX11Forwarding no\n"
	image := "# sshd\nPort 22\nPermitRootLogin no\nX11Forwarding no\nUsePAM yes\n"
	got, err := MergeLines([]byte(base), []byte(host), []byte(image))
	if err != nil || string(got) != "# sshd\nPort 2222\nPermitRootLogin no\nX11Forwarding no\nUsePAM yes\n" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := MergeLines([]byte("a\n"), []byte("b\n"), []byte("c\n")); !errors.Is(err, ErrLinesOverlap) {
		t.Fatalf("overlap: %v", err)
	}
	// No trailing newline on either side.
	// (the image's "b" became "b\n": a change of the last line only).
	got, err = MergeLines([]byte("a\nx\nb"), []byte("A\nx\nb"), []byte("a\nx\nb\nc"))
	if err != nil || string(got) != "A\nx\nb\nc" {
		t.Fatalf("%q %v", got, err)
	}
	// Changes to adjacent lines conflict, as in diff3.
	if _, err := MergeLines([]byte("a\nb\n"), []byte("A\nb\n"), []byte("a\nB\n")); !errors.Is(err, ErrLinesOverlap) {
		t.Fatalf("adjacent: %v", err)
	}
}
