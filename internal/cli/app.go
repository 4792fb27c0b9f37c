package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes. They are listed in `ingot --help`; keep the two in step.
const (
	ExitOK       = 0 // success; for diff and verify: no differences
	ExitNegative = 1 // the command ran and the answer is "no": differences found, verification failed, hosts failed
	ExitError    = 2 // trouble: bad input, I/O or network error, refused signature
	ExitUsage    = 3 // wrong flags or arguments
	ExitSame     = 4 // pkg build --previous: the new package equals the old but for timestamps and version
	ExitSignal   = 130
)

const exitCodeHelp = `Exit codes:
  0    success (diff, verify: no differences)
  1    the command ran and found differences, failed verification or had hosts fail
  2    error: bad input, I/O or network trouble, refused signature
  3    usage error: unknown flag, wrong arguments
  4    pkg build --previous: the new package equals the old one but for timestamps and version
  130  interrupted
`

// ErrNegative is returned (wrapped) by commands whose answer is "no" but
// that otherwise worked: diff found differences, verify found a mismatch,
// push had failed hosts. It maps to exit code 1.
var ErrNegative = errors.New("negative result")

// UsageError marks an error in the command line itself (exit code 3).
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// App is the ingot command line with its streams, so tests run it in-process.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Args   []string
	Getenv func(string) string

	// Set by the root command's flags.
	storeFlag string
	logLevel  string
	Log       *slog.Logger
}

// subcommands are added by each cmd_*.go file from init, so adding a
// command never touches a shared file.
var subcommands []func(*App) *cobra.Command

func Register(f func(*App) *cobra.Command) { subcommands = append(subcommands, f) }

// Execute runs the command line and returns the process exit code.
func (a *App) Execute(ctx context.Context) int {
	if a.Getenv == nil {
		a.Getenv = func(string) string { return "" }
	}
	// Commands write through Outputs: a failed write to stdout is kept
	// and reported below. Nothing can report a failed write to stderr.
	stdout, stderr := a.Stdout, a.Stderr
	out, errOut := NewOutput(stdout), NewOutput(stderr)
	a.Stdout, a.Stderr = out, errOut
	defer func() { a.Stdout, a.Stderr = stdout, stderr }()
	root := a.newRootCommand()
	root.SetArgs(a.Args)
	root.SetIn(a.Stdin)
	root.SetOut(a.Stdout)
	root.SetErr(a.Stderr)
	err := root.ExecuteContext(ctx)
	if isCobraUsageError(err) {
		err = UsageError{Err: err}
	}
	if werr := out.Err(); werr != nil && (err == nil || errors.Is(err, ErrNegative) || errors.Is(err, ErrUnchanged)) {
		// The answer did not reach its reader: that is the error.
		err = fmt.Errorf("writing standard output: %w", werr)
	}
	code := exitCode(ctx, err)
	if err != nil && !errors.Is(err, ErrNegative) && !errors.Is(err, ErrUnchanged) {
		errOut.Printf("ingot: %v\n", err)
		if code == ExitUsage {
			errOut.Println("Run 'ingot --help' for usage.")
		}
	}
	return code
}

func exitCode(ctx context.Context, err error) int {
	var ue UsageError
	switch {
	case err == nil:
		return ExitOK
	case ctx.Err() != nil:
		return ExitSignal
	case errors.Is(err, ErrNegative):
		return ExitNegative
	case errors.Is(err, ErrUnchanged):
		return ExitSame
	case errors.As(err, &ue):
		return ExitUsage
	}
	return ExitError
}

func (a *App) newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "ingot",
		Short: "Build, review and push golden images of a Linux root filesystem",
		Long: `ingot builds bit-for-bit reproducible golden images of a Linux root
filesystem from pinned Debian packages, reports what changed between two
images, and syncs hosts' root filesystems to an image, file by file.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(a.logLevel)); err != nil {
				return UsageError{Err: fmt.Errorf("--log-level: %w", err)}
			}
			a.Log = slog.New(slog.NewTextHandler(a.Stderr, &slog.HandlerOptions{Level: level}))
			return nil
		},
	}
	root.SetUsageTemplate(root.UsageTemplate() + "\n" + exitCodeHelp)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return UsageError{Err: err} })
	root.PersistentFlags().StringVar(&a.storeFlag, "store", "",
		"image store directory (default $INGOT_STORE, else /var/lib/ingot/store as root, else ~/.local/share/ingot/store)")
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	for _, f := range subcommands {
		root.AddCommand(f(a))
	}
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		strictGroups(c)
	}
	return root
}

// cobraUsagePrefixes start the errors cobra returns as plain errors for a
// wrong command line: a mistyped subcommand (also cobra.NoArgs) and
// required or grouped flags.
var cobraUsagePrefixes = []string{
	"unknown command ",
	"required flag(s) ",
	"if any flags in the group ",
	"at least one of the flags in the group ",
}

func isCobraUsageError(err error) bool {
	if err == nil {
		return false
	}
	var ue UsageError
	if errors.As(err, &ue) {
		return false
	}
	for _, p := range cobraUsagePrefixes {
		if strings.HasPrefix(err.Error(), p) {
			return true
		}
	}
	return false
}

// strictGroups makes every command below the root that only groups
// subcommands refuse a missing or unknown subcommand with a usage error
// (cobra would print the help and exit 0).
func strictGroups(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictGroups(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = ExactArgs(0)
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		return UsageError{Err: fmt.Errorf("%s: missing subcommand", cmd.CommandPath())}
	}
}

// StoreDir is where the image store lives: --store, else $INGOT_STORE,
// else /var/lib/ingot/store for root, else ~/.local/share/ingot/store.
func (a *App) StoreDir() string {
	if a.storeFlag != "" {
		return a.storeFlag
	}
	if s := a.Getenv("INGOT_STORE"); s != "" {
		return s
	}
	if os.Geteuid() == 0 {
		return "/var/lib/ingot/store"
	}
	if d := a.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "ingot", "store")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "ingot-store")
	}
	return filepath.Join(home, ".local", "share", "ingot", "store")
}

// unknownSubcommand is the usage error for `ingot group name` where the
// group has no subcommand called name.
func UnknownSubcommand(cmd *cobra.Command, name string) error {
	err := fmt.Errorf("unknown command %q for %q", name, cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		err = fmt.Errorf("%w; did you mean %s?", err, strings.Join(s, " or "))
	}
	return UsageError{Err: err}
}

// exactArgs is cobra.ExactArgs with a usage error. On a command that
// groups subcommands, ExactArgs(0) names an unknown subcommand as such.
func ExactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if n == 0 && len(args) > 0 && cmd.HasSubCommands() {
			return UnknownSubcommand(cmd, args[0])
		}
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return UsageError{Err: err}
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs with a usage error.
func MinArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(cmd, args); err != nil {
			return UsageError{Err: err}
		}
		return nil
	}
}

// ErrUnchanged is returned when --previous finds the new package equal to
// the old one but for timestamps and version (exit code 4).
var ErrUnchanged = errors.New("unchanged")

func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fk", float64(n)/(1<<10))
	}
	return fmt.Sprint(n)
}
