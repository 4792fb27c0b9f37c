package fleetcmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/rate"
)

func init() { cli.Register(newServeCommand) }

type serveOptions struct {
	listen  string
	bwlimit string
}

func newServeCommand(a *cli.App) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve --store DIR --listen ADDR [--bwlimit RATE]",
		Short: "Serve a store read-only over HTTP",
		Long: `Serve makes the store readable over plain HTTP, with the same paths nginx
would serve from the directory (see docs/store.md): GET and HEAD only, no
directory listings, nothing outside the store layout. Objects are sent as
immutable, refs with "Cache-Control: no-cache". --bwlimit caps the egress of
all responses together (bytes per second, K/M/G suffixes). One log line per
request. Stops cleanly on SIGINT/SIGTERM.`,
		Args: cli.ExactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), a, o) },
	}
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:8080", "listen on `ADDR` (host:port; port 0 picks one)")
	cmd.Flags().StringVar(&o.bwlimit, "bwlimit", "0", "cap egress at `RATE` bytes per second (e.g. 10M); 0: no cap")
	return cmd
}

func runServe(ctx context.Context, a *cli.App, o serveOptions) error {
	bps, err := rate.Parse(o.bwlimit)
	if err != nil {
		return cli.UsageError{Err: fmt.Errorf("--bwlimit: %w", err)}
	}
	dir := a.StoreDir()
	h, err := backend.NewServer(dir, backend.ServerOptions{Logger: a.Log, BytesPerSecond: bps})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	a.Log.Info("serving", "store", dir, "url", "http://"+ln.Addr().String()+"/", "bwlimit", bps)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	a.Log.Info("stopped serving", "store", dir)
	if err != nil {
		return err
	}
	return nil
}
