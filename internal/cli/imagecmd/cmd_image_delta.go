package imagecmd

import (
	"encoding/json"
	"fmt"

	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/spf13/cobra"
)

func init() { registerImage(newImageDeltaCommand) }

func newImageDeltaCommand(a *cli.App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "delta A B",
		Short: "Precompute sub-file deltas from image A to image B (once per pair; hosts at A then fetch far less)",
		Long: `delta stores, for every path that is a regular file in both images with
different content, B's version compressed with A's version as a zstd
dictionary (deltas/FROM/TO in the store), where that is smaller than the
chunks of B's version a host at A lacks. Agents at A then fetch the delta;
other hosts fetch chunks. Run it once per image pair (or import B with
--delta-from A); deltas already stored are kept.`,
		Args: cli.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ctx := cmd.Context()
			s, err := a.OpenStore()
			if err != nil {
				return err
			}
			defer cli.Close(&err, s)
			from, err := a.ResolveImage(ctx, s, args[0])
			if err != nil {
				return err
			}
			to, err := a.ResolveImage(ctx, s, args[1])
			if err != nil {
				return err
			}
			st, err := s.ComputeDeltas(ctx, from, to)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.Stdout).Encode(st)
			}
			_, err = fmt.Fprintf(a.Stdout, "%d changed files, %d deltas: a host at A fetches %s instead of %s in chunks it lacks (%s in all chunks)\n",
				st.Files, st.Deltas, cli.HumanBytes(st.DeltaBytes), cli.HumanBytes(st.ChunkBytes), cli.HumanBytes(st.WholeBytes))
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the numbers as JSON")
	return cmd
}
