package agent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ingotfleet/ingot/internal/glob"
	"github.com/ingotfleet/ingot/internal/rate"
	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/triggers"
)

// Config is the agent's configuration file (YAML, unknown keys refused).
type Config struct {
	// Name of this host in reports (default: the hostname).
	Name string `yaml:"name"`
	// Listen is the API address (host:port).
	Listen string `yaml:"listen"`
	// AddrFile, when set, receives the address the API listens on (useful
	// with port 0).
	AddrFile string `yaml:"addr_file"`
	// Root is the root filesystem to sync ("/" in production).
	Root string `yaml:"root"`
	// StateDir holds the journal, stage, backups and caches; it must be
	// on Root's filesystem (default ROOT/var/lib/ingot-agent).
	StateDir string `yaml:"state_dir"`
	// Stores are the store URLs, tried in order.
	Stores []string `yaml:"stores"`
	TLS    struct {
		CA   string `yaml:"ca"`
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
	// TrustedKeys are public key files (ingot key gen); an image must be
	// signed by one of them.
	TrustedKeys []string `yaml:"trusted_keys"`
	// LocalPaths replace pusher.DefaultLocal when set; ExtraLocalPaths add to it.
	LocalPaths      []string `yaml:"local_paths"`
	ExtraLocalPaths []string `yaml:"extra_local_paths"`
	// CrossMounts are mount points (globs) a sync enters; others are left
	// alone like rsync -x.
	CrossMounts []string        `yaml:"cross_mounts"`
	Triggers    []triggers.Rule `yaml:"triggers"`
	Limits      struct {
		Download    string `yaml:"download"` // bytes/s, e.g. 50M
		Write       string `yaml:"write"`    // bytes/s written while staging
		Concurrency int    `yaml:"concurrency"`
		Nice        int    `yaml:"nice"`
		IdleIO      bool   `yaml:"idle_io"`
	} `yaml:"limits"`
	Retries int           `yaml:"retries"`
	Backoff time.Duration `yaml:"backoff"`
	// Slots, when set, gives the host two root slots (docs/slots.md).
	Slots *SlotsConfig `yaml:"slots"`
	// Maintenance says what on the host blocks a rollout (indicators.go).
	Maintenance MaintenanceConfig `yaml:"maintenance"`
}

// LoadConfig reads and checks a config file. Relative paths in it are
// taken from the file's directory.
func LoadConfig(name string) (*Config, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return ParseConfig(name, b)
}

// ParseConfig parses config file contents; name names the file in errors
// and relative paths are taken from its directory.
func ParseConfig(name string, b []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	base := filepath.Dir(name)
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	abs(&c.Root)
	abs(&c.StateDir)
	abs(&c.AddrFile)
	abs(&c.TLS.CA)
	abs(&c.TLS.Cert)
	abs(&c.TLS.Key)
	abs(&c.Maintenance.BlockFile)
	abs(&c.Maintenance.Utmp)
	if c.Slots != nil {
		c.Slots.base = base
	}
	for i := range c.TrustedKeys {
		abs(&c.TrustedKeys[i])
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

// Validate checks the config and fills in defaults.
func (c *Config) Validate() error {
	if c.Root == "" {
		return fmt.Errorf("root is not set")
	}
	if c.StateDir == "" {
		c.StateDir = filepath.Join(c.Root, "var/lib/ingot-agent")
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if len(c.TrustedKeys) == 0 {
		return fmt.Errorf("trusted_keys is empty: an agent syncs only to signed images")
	}
	if err := c.Maintenance.validate(); err != nil {
		return err
	}
	if c.Slots != nil {
		if err := c.Slots.validate(c.Slots.base); err != nil {
			return err
		}
	}
	for i := range c.Triggers {
		c.Triggers[i].Source = "config"
		if err := c.Triggers[i].Validate(); err != nil {
			return err
		}
	}
	if _, err := c.localGlobs(); err != nil {
		return err
	}
	if _, err := glob.CompileSet(c.CrossMounts); err != nil {
		return fmt.Errorf("cross_mounts: %w", err)
	}
	for _, r := range []string{c.Limits.Download, c.Limits.Write} {
		if _, err := rate.Parse(r); err != nil {
			return fmt.Errorf("limits: %w", err)
		}
	}
	return nil
}

func (c *Config) localGlobs() (glob.Set, error) {
	l := c.LocalPaths
	if len(l) == 0 {
		l = pusher.DefaultLocal
	}
	g, err := glob.CompileSet(append(append([]string{}, l...), c.ExtraLocalPaths...))
	if err != nil {
		return nil, fmt.Errorf("local_paths: %w", err)
	}
	return g, nil
}
