package main

import (
	"flag"
	"io"

	"github.com/mailgate/mailgate/config"
)

// configFlags are the flags of every command that reads the gateway's
// configuration: the queue commands (to find its control socket) and the
// tracking commands (to find its store).
type configFlags struct {
	fs     *flag.FlagSet
	config string
	json   bool // for the commands that print JSON; each says how
}

func newConfigFlags(name string, stderr io.Writer) *configFlags {
	f := &configFlags{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.config, "config", "", "the gateway's configuration `file` (default: the embedded default, with its data in ./mailgate-data)")
	f.fs.StringVar(&f.config, "c", "", "short for --config")
	return f
}

// load reads the configuration --config names, or takes the embedded
// default.
func (f *configFlags) load() (*config.Config, error) {
	if f.config == "" {
		return config.Default(), nil
	}
	return config.Load(f.config)
}
