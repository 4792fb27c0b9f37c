// Command ingot builds golden images of a Linux root filesystem, reports
// what changed between them, and pushes them to fleets of hosts.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := &App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Args: os.Args[1:], Getenv: os.Getenv}
	code := app.Execute(ctx)
	stop()
	os.Exit(code)
}
