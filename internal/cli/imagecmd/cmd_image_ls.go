package imagecmd

import (
	"encoding/json"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/cli"
)

func init() { registerImage(newImageLsCommand) }

func newImageLsCommand(a *cli.App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the images in the store with their refs, paths and size",
		Args:  cli.ExactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			ctx := cmd.Context()
			s, err := a.OpenStore()
			if err != nil {
				return err
			}
			defer cli.Close(&err, s)
			list, err := s.Images(ctx)
			if err != nil {
				return err
			}
			type row struct {
				Digest images.Digest `json:"digest"`
				Refs   []string      `json:"refs"`
				Paths  int           `json:"paths"`
				Bytes  int64         `json:"bytes"`
			}
			rows := []row{}
			for _, im := range list {
				m, err := s.Manifest(ctx, im.Digest)
				if err != nil {
					return err
				}
				r := row{Digest: im.Digest, Refs: im.Refs, Paths: len(m.Entries)}
				for i := range m.Entries {
					r.Bytes += m.Entries[i].Size
				}
				rows = append(rows, r)
			}
			if asJSON {
				return json.NewEncoder(a.Stdout).Encode(rows)
			}
			tw := cli.NewTable(a.Stdout, 0, 4, 2)
			tw.Println("DIGEST\tPATHS\tBYTES\tREFS")
			for _, r := range rows {
				tw.Printf("%s\t%d\t%d\t%s\n", r.Digest, r.Paths, r.Bytes, strings.Join(r.Refs, " "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of {digest, refs, paths, bytes}")
	return cmd
}
