package rpm2deb

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ingotfleet/ingot/builder/rpm"
)

// scriptlet is an RPM scriptlet converted into a dpkg maintainer script.
type scriptlet struct {
	rpmName   string // "%pre"
	debName   string // "preinst"
	bodyTag   int
	progTag   int
	argsShim  string // the case statement setting $1 from dpkg's action
	shimNotes string
}

// The shims turn dpkg's action arguments into RPM's $1, the number of
// instances of the package that will be installed after the operation:
// 1 on a first install, 2 on an upgrade, 0 on removal, 1 when an older
// instance is removed during an upgrade. dpkg actions with no RPM
// equivalent (abort-*, failed-upgrade, deconfigure, disappear, purge)
// run nothing.
var scriptlets = []scriptlet{
	{"%pre", "preinst", rpm.TagPreIn, rpm.TagPreInProg, `case "$1" in
install) set -- 1 ;;
upgrade) set -- 2 ;;
*) exit 0 ;;
esac`, "preinst install → $1=1, upgrade → $1=2, abort-upgrade → not run"},
	{"%post", "postinst", rpm.TagPostIn, rpm.TagPostInProg, `case "$1" in
configure) if [ -z "$2" ]; then set -- 1; else set -- 2; fi ;;
*) exit 0 ;;
esac`, "postinst configure (first) → $1=1, configure OLD → $1=2, abort-* → not run"},
	{"%preun", "prerm", rpm.TagPreUn, rpm.TagPreUnProg, `case "$1" in
remove) set -- 0 ;;
upgrade) set -- 1 ;;
*) exit 0 ;;
esac`, "prerm remove → $1=0, upgrade → $1=1, deconfigure/failed-upgrade → not run"},
	{"%postun", "postrm", rpm.TagPostUn, rpm.TagPostUnProg, `case "$1" in
remove) set -- 0 ;;
upgrade) set -- 1 ;;
*) exit 0 ;;
esac`, "postrm remove → $1=0, upgrade → $1=1, purge/abort-*/disappear/failed-upgrade → not run"},
}

// scriptProg returns a scriptlet's interpreter and its arguments from the
// *PROG tag (a string, or a string array of interpreter and arguments).
func scriptProg(p *rpm.Package, tag int) []string {
	return p.Strings(tag)
}

// buildScript writes the maintainer script for one scriptlet. prog is
// the interpreter with arguments (empty: /bin/sh). ok is false when the
// scriptlet cannot run under dpkg (Lua, which only rpm embeds).
func buildScript(s scriptlet, nevra string, body string, prog []string, extra string) (string, bool) {
	if len(prog) == 0 {
		prog = []string{"/bin/sh"}
	}
	if prog[0] == "<lua>" {
		return "", false
	}
	var b strings.Builder
	shell := prog[0] == "/bin/sh" || prog[0] == "/bin/bash" || prog[0] == "/usr/bin/sh" || prog[0] == "/usr/bin/bash"
	if shell {
		fmt.Fprintf(&b, "#!%s\n", strings.Join(prog, " "))
	} else {
		b.WriteString("#!/bin/sh\n")
	}
	fmt.Fprintf(&b, "# The RPM %s scriptlet of %s, converted by ingot rpm2deb.\n", s.rpmName, nevra)
	b.WriteString("# dpkg passes its action; RPM scriptlets expect $1 = the number of\n# instances of the package installed after this operation.\n")
	b.WriteString(s.argsShim)
	b.WriteString("\n")
	if extra != "" {
		b.WriteString(extra)
	}
	if body == "" {
		b.WriteString("exit 0\n")
		return b.String(), true
	}
	if shell {
		b.WriteString(body)
		if !strings.HasSuffix(body, "\n") {
			b.WriteString("\n")
		}
		return b.String(), true
	}
	// Another interpreter: rpm runs "prog [args] scriptfile $1".
	eof := "INGOT_RPM_SCRIPTLET"
	for strings.Contains(body, eof) {
		eof += "_"
	}
	fmt.Fprintf(&b, "ingot_script=$(mktemp) || exit 1\ncat >\"$ingot_script\" <<'%s'\n%s", eof, body)
	if !strings.HasSuffix(body, "\n") {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%s\n", eof)
	quoted := make([]string, len(prog))
	for i, a := range prog {
		quoted[i] = shellQuote(a)
	}
	fmt.Fprintf(&b, "%s \"$ingot_script\" \"$1\"\nrc=$?\nrm -f \"$ingot_script\"\nexit $rc\n", strings.Join(quoted, " "))
	return b.String(), true
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// capsScript is the postinst fragment that applies file capabilities,
// which a .deb's tar cannot carry (dpkg ignores extended attributes).
func capsScript(caps map[string]string) string {
	if len(caps) == 0 {
		return ""
	}
	paths := slices.Sorted(maps.Keys(caps))
	var b strings.Builder
	b.WriteString("# File capabilities from the RPM header (%caps).\n")
	b.WriteString("if [ \"$1\" = 1 ] || [ \"$1\" = 2 ]; then\n")
	for _, p := range paths {
		fmt.Fprintf(&b, "  setcap %s %s || exit 1\n", shellQuote(caps[p]), shellQuote(p))
	}
	b.WriteString("fi\n")
	return b.String()
}

// otherScripts lists the scriptlets dpkg has no place for.
var otherScripts = []struct {
	tag  int
	name string
}{
	{rpm.TagPreTrans, "%pretrans"},
	{rpm.TagPostTrans, "%posttrans"},
	{rpm.TagPreUnTrans, "%preuntrans"},
	{rpm.TagPostUnTrans, "%postuntrans"},
	{rpm.TagVerifyScript, "%verifyscript"},
	{rpm.TagTriggerScripts, "triggers (%triggerin/%triggerun/%triggerpostun)"},
	{rpm.TagFileTriggerScript, "file triggers (%filetrigger*)"},
	{rpm.TagTransFileTrigger, "transaction file triggers (%transfiletrigger*)"},
}
