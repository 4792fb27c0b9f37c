package rpm2deb

import (
	"testing"
)

func TestFormatDescription(t *testing.T) {
	const fb = "Converted."
	for _, tc := range []struct {
		summary, desc, want string
		changed             bool
	}{
		{"A tool", "It does things.\n\nWell.", "A tool\n It does things.\n .\n Well.", false},
		{"CentOS-3 release file", "CentOS-3 release file", "CentOS-3 release file\n Converted.", true},
		{"CentOS-3 release file", "centos 3 release file.\n\nMore text.", "CentOS-3 release file\n More text.", true},
		{"Hello", "Hello\nand more on the same paragraph", "Hello\n and more on the same paragraph", true},
		{"Hello", "\n\nHello!\n", "Hello\n Converted.", true},
		{"Hello", "", "Hello\n Converted.", true},
		{"Hello", "Hello world", "Hello\n Hello world", false},
		{"Hello", "  indented\n\ttab", "Hello\n   indented\n     tab", false},
	} {
		got, note := formatDescription(tc.summary, tc.desc, fb)
		if got != tc.want || (note != "") != tc.changed {
			t.Errorf("formatDescription(%q, %q) = %q, %q; want %q, changed %v", tc.summary, tc.desc, got, note, tc.want, tc.changed)
		}
	}
}
