package fleetcmd

import (
	"fmt"
	"os"

	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/spf13/cobra"
)

func init() { cli.Register(newDemoCommand) }

func newDemoCommand(a *cli.App) *cobra.Command {
	var keep, tree bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show ingot's main job on a small built-in example",
		Long: `Demo runs ingot's main job on a built-in example, in a scratch folder
removed afterwards unless --keep:

  1. lock and build a small Debian image (minbase, no docs) from an embedded
     spec and the Debian mirror, into a fresh store (as root; without root,
     or with --tree, a small hand-made tree is imported instead);
  2. export it as a tar, import that again and show the digests match;
  3. verify the store and the built tree against the image;
  4. sign it, start three agents on loopback (mutual TLS, temporary roots)
     and push it to them;
  5. change the image, precompute its sub-file deltas and push again,
     showing what changed and which triggers fired.`,
		Args: cli.ExactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			dir, err := os.MkdirTemp("", "ingot-demo-")
			if err != nil {
				return err
			}
			if keep {
				defer a.Printf("kept %s\n", dir)
			} else {
				defer func() { _ = os.RemoveAll(dir) }() // the demo's scratch folder
			}
			d := &cli.Demo{App: a, Dir: dir, Build: !tree && os.Geteuid() == 0}
			if !tree && !d.Build {
				d.Say("(not root: a small hand-made tree stands in for the Debian image; building needs root)")
			}
			defer func() {
				if d.Store != nil {
					cli.Close(&err, d.Store)
				}
			}()
			steps := cli.DemoSteps(d)
			for i, s := range steps {
				d.Say("== %d/%d %s", i+1, len(steps), s.Name)
				if err := s.Run(cmd.Context(), d); err != nil {
					return fmt.Errorf("demo step %q: %w", s.Name, err)
				}
			}
			d.Say("== done: all %d steps passed", len(steps))
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the scratch folder (tree, tars, store)")
	cmd.Flags().BoolVar(&tree, "tree", false, "use a small hand-made tree instead of building a Debian image (no root or network needed)")
	return cmd
}
