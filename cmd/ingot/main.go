// Command ingot builds golden images of a Linux root filesystem, reports
// what changed between them, and pushes them to fleets of hosts.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ingotfleet/ingot/internal/cli"
	_ "github.com/ingotfleet/ingot/internal/cli/buildcmd" // the commands add themselves from init
	_ "github.com/ingotfleet/ingot/internal/cli/fleetcmd"
	_ "github.com/ingotfleet/ingot/internal/cli/imagecmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := &cli.App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Args: os.Args[1:], Getenv: os.Getenv}
	code := app.Execute(ctx)
	stop()
	os.Exit(code)
}
