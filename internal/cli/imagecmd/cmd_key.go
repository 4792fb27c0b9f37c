package imagecmd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/atomicfile"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/pusher/signing"
)

func init() { cli.Register(newKeyCommand) }

func newKeyCommand(a *cli.App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Make ed25519 keys for signing images (ingot image sign)",
		Args:  cli.ExactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			return cli.UsageError{Err: fmt.Errorf("ingot key: missing subcommand")}
		},
	}
	var comment string
	gen := &cobra.Command{
		Use:   "gen PREFIX",
		Short: "Make a key pair: PREFIX.key (secret) and PREFIX.pub (give it to agents as trusted_keys)",
		Args:  cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			priv, pub := args[0]+".key", args[0]+".pub"
			if _, err := os.Stat(priv); err == nil {
				return fmt.Errorf("%s exists; not overwriting a key", priv)
			}
			k, err := signing.Generate(comment)
			if err != nil {
				return err
			}
			// Exclusive: a key made meanwhile by another run is not replaced.
			if err := atomicfile.WriteNew(priv, []byte(k.String()+"\n"), 0o600); err != nil {
				if errors.Is(err, fs.ErrExist) {
					return fmt.Errorf("%s exists; not overwriting a key", priv)
				}
				return err
			}
			if err := atomicfile.WriteFile(pub, []byte(k.Public().String()+"\n"), 0o644); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.Stdout, "%s\n%s (key id %s)\n", priv, pub, k.Public().ID())
			return err
		},
	}
	gen.Flags().StringVar(&comment, "comment", "", "comment stored with the key (who owns it)")
	cmd.AddCommand(gen)
	return cmd
}

// signImage adds a signature by the key in keyFile to image ref,
// stating that it is published as st.Ref (ref itself when empty and ref
// is a NAME:TAG), generation st.Generation (the time now in nanoseconds
// when 0).
func signImage(ctx context.Context, a *cli.App, ref, keyFile string, st signing.Statement) (err error) {
	if st.Ref == "" {
		if _, _, err := store.ParseRef(ref); err != nil {
			return cli.UsageError{Err: fmt.Errorf("signing %s: give --as NAME:TAG, the name the image is published as (a signature names it)", ref)}
		}
		st.Ref = ref
	}
	if st.Generation == 0 {
		st.Generation = uint64(time.Now().UnixNano())
	}
	if err := st.Check(); err != nil {
		return cli.UsageError{Err: fmt.Errorf("signing %s: %w", ref, err)}
	}
	k, err := signing.LoadPrivateKey(keyFile)
	if err != nil {
		return err
	}
	s, err := a.OpenStore()
	if err != nil {
		return err
	}
	defer cli.Close(&err, s)
	d, err := a.ResolveImage(ctx, s, ref)
	if err != nil {
		return err
	}
	if _, err := s.ManifestBytes(ctx, d); err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	old, err := s.Signature(ctx, d)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := s.PutSignature(ctx, d, signing.AddSignature(old, signing.Sign(k, d, st))); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.Stdout, "signed %s as %s generation %d with key %s\n", d, st.Ref, st.Generation, k.Public().ID())
	return err
}
