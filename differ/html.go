package differ

import (
	"html/template"
	"io"
	"strings"
)

// The HTML report is one page with no external assets: inline CSS, no
// scripts, no fonts or images, so it can be archived and opened anywhere.
var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"title":    groupTitle,
	"entry":    entryText,
	"attr":     attrText,
	"versions": PackageChange.VersionsText,
	"plural":   Plural,
	"upper":    func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
	"lines":    func(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") },
	"lineclass": func(l string) string {
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			return "fh"
		case strings.HasPrefix(l, "@@"):
			return "hunk"
		case strings.HasPrefix(l, "+"):
			return "add"
		case strings.HasPrefix(l, "-"):
			return "del"
		}
		return "ctx"
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ingot diff: {{.A}} → {{.B}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1b1b1b; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
code, pre, td.path { font-family: ui-monospace, monospace; font-size: 13px; }
#summary { background: #f3f6fa; border: 1px solid #c9d6e3; padding: .6em 1em; }
#summary li { margin: .15em 0; }
table { border-collapse: collapse; } td, th { padding: .15em .6em; text-align: left; vertical-align: top; }
tr.added td.kind { color: #116329; } tr.removed td.kind { color: #a40e26; } tr.changed td.kind { color: #7d4e00; }
.alert { color: #fff; background: #b3261e; font-weight: bold; padding: 0 .3em; border-radius: 3px; }
pre { background: #f6f8fa; padding: .5em; overflow-x: auto; margin: .3em 0; }
pre span { display: block; white-space: pre; } .add { background: #e6ffec; } .del { background: #ffebe9; }
.hunk { color: #0550ae; } .fh { font-weight: bold; } .note { color: #555; font-style: italic; }
</style>
</head>
<body>
<h1>ingot diff report</h1>
<p><code>a: {{.A}}</code><br><code>b: {{.B}}</code></p>
<ul id="summary">{{range .SummaryLines}}
<li>{{.}}</li>{{end}}
</ul>
{{if .Packages}}<h2 id="packages">Packages</h2>
<table>
<tr><th>change</th><th>package</th><th>versions</th></tr>
{{range .Packages}}<tr class="{{.Change}}"><td class="kind">{{.Change}}</td><td><code>{{.Name}}</code></td><td><code>{{versions .}}</code></td></tr>
{{end}}</table>
{{range .Packages}}{{if or .Changelog .ChangelogNote}}<h3>Changelog of {{.Name}} <code>{{versions .}}</code></h3>
{{if .ChangelogNote}}<p class="note">{{.ChangelogNote}}</p>{{end}}
{{range .Changelog}}<pre>{{.Text}}</pre>
{{end}}{{end}}{{end}}{{end}}
{{range .Groups}}<h2>{{title .}}: {{plural (len .Changes) "path"}}</h2>
<table>
{{range .Changes}}<tr class="{{.Kind}}"><td class="kind">{{.Kind}}</td><td class="path">{{.Path}}</td><td>
{{- if .New}}{{if eq .Kind.String "added"}}{{entry .New}}{{end}}{{end}}
{{- if .Old}}{{if eq .Kind.String "removed"}}{{entry .Old}}{{end}}{{end}}
{{- range .Attrs}}<div><code>{{attr .}}</code></div>{{end}}
{{- if .Owners}}<div>owners: {{range $i, $o := .Owners}}{{if $i}}, {{end}}{{$o}}{{end}}</div>{{end}}
{{- range .Alerts}}<div><span class="alert">!! {{upper .}}</span></div>{{end}}
{{- with .Content}}{{if .Note}}<div class="note">{{.Note}}</div>{{end}}{{if .Diff}}<pre>{{range lines .Diff}}<span class="{{lineclass .}}">{{.}}</span>{{end}}</pre>{{end}}{{end}}
</td></tr>
{{end}}</table>
{{end}}
</body>
</html>
`))

func (r *Report) writeHTML(w io.Writer) error {
	return htmlReport.Execute(w, r)
}
