package imagecmd

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/glob"
)

func init() { registerImage(newImageVerifyCommand) }

type imageVerifyOptions struct {
	all         bool
	root        string
	json        bool
	ignoreMtime bool
	exclude     []string
	oneFS       bool
}

func newImageVerifyCommand(a *cli.App) *cobra.Command {
	var o imageVerifyOptions
	cmd := &cobra.Command{
		Use:   "verify REF [--root DIR] | verify --all",
		Short: "Check an image's objects in the store, or a live root against the image",
		Long: `Without --root, verify reads every object the image needs (manifest, index,
each chunk of each file) and checks each against its hash: exit 0 when all
are sound, 1 naming each damaged or missing one.

With --root, verify walks DIR (lstat only, never following symlinks) and
compares it with the image, printing what differs as mtree -f -p does:
"PATH changed" followed by "\tKEY expected OLD found NEW" lines,
"PATH missing" (in the image, not in DIR) and "PATH extra" (in DIR only).
Owners are compared by uid and gid, as the agent sets them; user and group
names live in the account files (etc/passwd, etc/group), which are compared
like any other file, so a renamed account is reported there once, as the
agent's drift report does.
Exit 1 when anything differs.

With --all (and no REF), verify checks the whole store: every object against
its name, every chunk list by reassembling its file, every image's manifest
and index, every ref.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.all && len(args) == 0 && o.root == "":
				return runStoreVerify(cmd, a, o)
			case !o.all && len(args) == 1:
				return runImageVerify(cmd, a, o, args[0])
			}
			return cli.UsageError{Err: fmt.Errorf("verify takes one REF, or --all alone")}
		},
	}
	cmd.Flags().BoolVar(&o.all, "all", false, "check the integrity of the whole store instead of one image")
	cmd.Flags().StringVar(&o.root, "root", "", "compare the live tree at `DIR` with the image")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the problems (or, with --root, the deltas) as JSON")
	cmd.Flags().BoolVar(&o.ignoreMtime, "ignore-mtime", false, "with --root: leave modification times out")
	cmd.Flags().StringArrayVar(&o.exclude, "exclude", nil, "with --root: leave out paths matching `GLOB` (relative to the root, ** for any depth; repeatable), e.g. a host's local paths")
	cmd.Flags().Bool("numeric-owner", true, "with --root: compare owners by uid and gid (always so now)")
	if err := cmd.Flags().MarkDeprecated("numeric-owner", "owners are always compared by uid and gid; names through the account files"); err != nil {
		panic(err) // the flag is defined just above
	}
	cmd.Flags().BoolVarP(&o.oneFS, "one-file-system", "x", false, "with --root: do not descend into other filesystems mounted below the root")
	return cmd
}

func runStoreVerify(cmd *cobra.Command, a *cli.App, o imageVerifyOptions) (err error) {
	s, err := a.OpenStore()
	if err != nil {
		return err
	}
	defer cli.Close(&err, s)
	probs, err := s.Verify(cmd.Context(), nil)
	if err != nil {
		return err
	}
	if err := printProblems(a, o, probs); err != nil {
		return err
	}
	if len(probs) > 0 {
		return fmt.Errorf("store %s: %d problems: %w", a.StoreDir(), len(probs), cli.ErrNegative)
	}
	a.Log.Info("verified", "store", a.StoreDir())
	return nil
}

func printProblems(a *cli.App, o imageVerifyOptions, probs []store.Problem) error {
	if o.json {
		type problem struct {
			What  string `json:"what"`
			Error string `json:"error"`
		}
		out := []problem{}
		for _, p := range probs {
			out = append(out, problem{p.What, p.Err.Error()})
		}
		return json.NewEncoder(a.Stdout).Encode(out)
	}
	for _, p := range probs {
		if _, err := fmt.Fprintln(a.Stdout, p); err != nil {
			return err
		}
	}
	return nil
}

func runImageVerify(cmd *cobra.Command, a *cli.App, o imageVerifyOptions, ref string) (err error) {
	ctx := cmd.Context()
	s, err := a.OpenStore()
	if err != nil {
		return err
	}
	defer cli.Close(&err, s)
	d, err := a.ResolveImage(ctx, s, ref)
	if err != nil {
		return err
	}
	if o.root == "" {
		probs, err := s.VerifyImage(ctx, d, nil)
		if err != nil {
			return err
		}
		if err := printProblems(a, o, probs); err != nil {
			return err
		}
		if len(probs) > 0 {
			return fmt.Errorf("image %s: %d problems: %w", d, len(probs), cli.ErrNegative)
		}
		a.Log.Info("verified", "image", d)
		return nil
	}
	m, err := s.Manifest(ctx, d)
	if err != nil {
		return err
	}
	excluded, err := glob.CompileSet(o.exclude)
	if err != nil {
		return cli.UsageError{Err: fmt.Errorf("--exclude: %w", err)}
	}
	// A nil FileFunc lets the walk hash files in parallel.
	// Owners by number, names not compared (NamesWhereBoth with a walk
	// that records none): the agent's rule, so that verify and its
	// drift report name the same paths (TestVerifyRootAgreesWithDrift).
	live, err := images.WalkDir(ctx, o.root, images.WalkOptions{Exclude: excluded.Match, OneFileSystem: o.oneFS, NumericOwner: true}, nil)
	if err != nil {
		return err
	}
	deltas := images.Compare(m, live, images.CompareOptions{IgnoreMtime: o.ignoreMtime, Exclude: excluded.Match, NamesWhereBoth: true})
	if o.json {
		if deltas == nil {
			deltas = []images.Delta{}
		}
		if err := json.NewEncoder(a.Stdout).Encode(deltas); err != nil {
			return err
		}
	} else if err := writeMtreeReport(a.Stdout, deltas); err != nil {
		return err
	}
	if len(deltas) > 0 {
		return fmt.Errorf("%s differs from image %s in %d paths: %w", o.root, d, len(deltas), cli.ErrNegative)
	}
	a.Log.Info("verified", "image", d, "root", o.root)
	return nil
}

// writeMtreeReport prints deltas the way `mtree -f spec -p root` reports
// differences.
func writeMtreeReport(w io.Writer, deltas []images.Delta) error {
	var b strings.Builder
	for _, dl := range deltas {
		p := images.Escape(dl.Path)
		switch dl.Kind {
		case images.Added:
			fmt.Fprintf(&b, "%s extra\n", p)
		case images.Removed:
			fmt.Fprintf(&b, "%s missing\n", p)
		default:
			fmt.Fprintf(&b, "%s changed\n", p)
			for _, k := range dl.Keys {
				fmt.Fprintf(&b, "\t%s expected %s found %s\n", k, keyValue(dl.Old, dl.OldLinks, k), keyValue(dl.New, dl.NewLinks, k))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// keyValue prints the value of key k of e as the manifest spells it.
func keyValue(e *images.Entry, links []string, k string) string {
	if e == nil {
		return "-"
	}
	switch k {
	case images.KeyType:
		return e.Type.String()
	case images.KeyMode:
		return fmt.Sprintf("%04o", e.Mode)
	case images.KeyUID:
		return fmt.Sprint(e.UID)
	case images.KeyGID:
		return fmt.Sprint(e.GID)
	case images.KeyUname:
		return e.Uname
	case images.KeyGname:
		return e.Gname
	case images.KeySize:
		return fmt.Sprint(e.Size)
	case images.KeySHA256:
		return e.SHA256.String()
	case images.KeyLink:
		return images.Escape(e.Link)
	case images.KeyDevice:
		return fmt.Sprintf("%d,%d", e.DevMajor, e.DevMinor)
	case images.KeyTime:
		return fmt.Sprintf("%d.000000000", e.Mtime)
	case images.KeyHardlink:
		if len(links) == 0 {
			return "(none)"
		}
		esc := make([]string, len(links))
		for i, l := range links {
			esc[i] = images.Escape(l)
		}
		return strings.Join(esc, ",")
	}
	if name, ok := strings.CutPrefix(k, images.KeyXattr); ok {
		if v, ok := e.Xattrs[name]; ok {
			return images.Escape(v)
		}
		return "(none)"
	}
	return "?"
}
