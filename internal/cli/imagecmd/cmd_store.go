package imagecmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/cli"
)

func init() { cli.Register(newStoreCommand) }

func newStoreCommand(a *cli.App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Maintain the image store itself",
		Args:  cli.ExactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cli.UsageError{Err: fmt.Errorf("ingot store: missing subcommand")}
		},
	}
	cmd.AddCommand(newStoreMigrateCommand(a))
	return cmd
}

func newStoreMigrateCommand(a *cli.App) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate [STORE]",
		Short: "Convert a store to the current layout (v1 → v2: packs) in place",
		Long: `Migrate converts a local store (STORE, else --store) from layout v1, one file
per chunk, to layout v2, chunks in packs read with range requests (see
docs/store.md). Every object is verified as it is copied; the new layout is
made durable before the store says v2, and the old files are removed only
after that, so a crash at any point leaves a store that reads; running
migrate again finishes the job. Images keep their digests and export the
same bytes. Stop servers that write to the store first; readers may go on.`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := a.StoreDir()
			if len(args) == 1 {
				dir = args[0]
			}
			return runStoreMigrate(cmd.Context(), a, dir)
		},
	}
}

func runStoreMigrate(ctx context.Context, a *cli.App, dir string) error {
	st, err := store.Migrate(ctx, dir, nil)
	if err != nil {
		return err
	}
	if st.From == st.To {
		_, err = fmt.Fprintf(a.Stdout, "%s: already layout v%d; removed %d loose copies of packed objects\n", dir, st.To, st.Removed)
		return err
	}
	_, err = fmt.Fprintf(a.Stdout, "%s: layout v%d → v%d: %d objects packed, %d image pack indexes, %d loose files removed\n",
		dir, st.From, st.To, st.Packed, st.Images, st.Removed)
	return err
}
