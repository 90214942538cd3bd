package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/hearsay/hearsay/node"
)

// httpAuthFlags adds --http-auth and --http-auth-file to fs. The returned
// function, called after parsing, reads the token file into cfg.HTTPAuth.
func httpAuthFlags(fs *flag.FlagSet, cfg *node.Config) func() error {
	var file string
	fs.StringVar(&cfg.HTTPAuth, "http-auth", "", "token every --http request must carry (Authorization: Bearer <token>, or ?token=<token>); required when --http is not a loopback address")
	fs.StringVar(&file, "http-auth-file", "", "file holding the --http-auth token (keeps it out of the process list)")
	return func() error {
		if file == "" {
			return nil
		}
		if cfg.HTTPAuth != "" {
			return errors.New("--http-auth and --http-auth-file are exclusive")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("--http-auth-file: %w", err)
		}
		cfg.HTTPAuth = strings.TrimSpace(string(b))
		if cfg.HTTPAuth == "" {
			return fmt.Errorf("--http-auth-file %s is empty", file)
		}
		return nil
	}
}
