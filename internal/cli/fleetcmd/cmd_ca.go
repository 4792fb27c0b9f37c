package fleetcmd

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/pki"
)

func init() { cli.Register(newCACommand) }

func newCACommand(a *cli.App) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Make a fleet CA and certificates for agents and controllers (mutual TLS)",
		Args:  cli.ExactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			return cli.UsageError{Err: fmt.Errorf("ingot ca: missing subcommand")}
		},
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", "ca", "directory of the CA (ca.pem, ca-key.pem)")
	var name string
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Make a new CA in --dir",
		Args:  cli.ExactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pki.InitCA(dir, name); err != nil {
				return err
			}
			_, err := fmt.Fprintf(a.Stdout, "CA written to %s (ca.pem; keep ca-key.pem secret)\n", dir)
			return err
		},
	}
	initCmd.Flags().StringVar(&name, "name", "ingot fleet CA", "the CA's common name")
	var (
		role  string
		hosts []string
		out   string
		valid time.Duration
	)
	issue := &cobra.Command{
		Use:   "issue NAME --role agent|controller [--host H]...",
		Short: "Issue a certificate: NAME.pem and NAME-key.pem in --out",
		Args:  cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if role != string(pki.RoleAgent) && role != string(pki.RoleController) {
				return cli.UsageError{Err: fmt.Errorf("--role must be agent or controller")}
			}
			if out == "" {
				out = dir
			}
			c, k, err := pki.IssueCert(dir, out, args[0], pki.Role(role), hosts, valid)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.Stdout, "%s\n%s\n", c, k)
			return err
		},
	}
	issue.Flags().StringVar(&role, "role", "", "agent (serves the API) or controller (calls it)")
	issue.Flags().StringSliceVar(&hosts, "host", nil, "DNS names or IPs an agent is reached at (default: NAME)")
	issue.Flags().StringVar(&out, "out", "", "where to write the certificate (default --dir)")
	issue.Flags().DurationVar(&valid, "valid", 365*24*time.Hour, "how long the certificate is good for")
	cmd.AddCommand(initCmd, issue)
	return cmd
}
