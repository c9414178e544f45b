// Package syslogngtest runs a real syslog-ng (Debian's syslog-ng-core and
// syslog-ng-mod-http) as a producer in tests: it reads a file of lines and
// sends each line to sluice with its network() and http() destinations,
// the way people already run it.
package syslogngtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-ingest/sluice/internal/redistest"
)

// Destination is one syslog-ng destination fed by the input file.
type Destination struct {
	name string
	conf string // the driver's options
}

// Throttle limits the destination to n messages per second.
func (d Destination) Throttle(n int) Destination {
	d.conf = fmt.Sprintf("%s throttle(%d)", d.conf, n)
	return d
}

// Network sends each line, prefixed, as "prefix<line>\n" over one TCP
// connection to addr (host:port), with a receive buffer of rcvbuf bytes
// (syslog-ng never reads from it).
func Network(host string, port int, prefix string, rcvbuf int) Destination {
	return Destination{name: "network", conf: fmt.Sprintf(
		`"%s" port(%d) transport("tcp") template("%s$MSG\n") so-rcvbuf(%d)`, host, port, prefix, rcvbuf)}
}

// HTTP POSTs the lines, prefixed, to url in batches of batchLines lines,
// and retries a batch that did not get a 2xx.
func HTTP(url, prefix string, batchLines int) Destination {
	return Destination{name: "http", conf: fmt.Sprintf(`
        url("%s") method("POST")
        headers("Content-Type: text/plain")
        body("%s$MSG") delimiter("\n") body-suffix("\n")
        batch-lines(%d) batch-timeout(200)
        retries(1000)
        response-action(400 => drop, 413 => drop, 429 => retry, 500 => retry, 502 => retry, 503 => retry, 504 => retry)`, url, prefix, batchLines)}
}

// Options configure a syslog-ng run.
type Options struct {
	// Input is the file whose lines are sent (followed, as a log file).
	Input string
	// Destinations each get every line.
	Destinations []Destination
	// BaseDir holds the run's dir. Empty: the system temp dir.
	BaseDir string
}

// Config renders the syslog-ng configuration: a file source, flow control
// (a full destination queue stops the source, so syslog-ng itself drops
// nothing), reconnect after 1 s.
func Config(o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, `@version: 3.38
options { time-reopen(1); log-fifo-size(20000); };
source s_in { file("%s" follow-freq(1) flags(no-parse) log-iw-size(10000) log-fetch-limit(1000)); };
`, o.Input)
	for i, d := range o.Destinations {
		fmt.Fprintf(&b, "destination d_%s_%d { %s(%s); };\n", d.name, i, d.name, d.conf)
		fmt.Fprintf(&b, "log { source(s_in); destination(d_%s_%d); flags(flow-control); };\n", d.name, i)
	}
	return b.String()
}

// SyslogNG is a running syslog-ng.
type SyslogNG struct {
	*redistest.Command
}

// Start runs syslog-ng in the foreground with its own config, persist
// file, pid file and control socket, without capabilities. Close it (or
// use New in a test).
func Start(ctx context.Context, o Options) (*SyslogNG, error) {
	if len(o.Destinations) == 0 || o.Input == "" {
		return nil, fmt.Errorf("start syslog-ng: need an input and a destination")
	}
	dir, err := os.MkdirTemp(o.BaseDir, "syslog-ng-")
	if err != nil {
		return nil, fmt.Errorf("start syslog-ng: %w", err)
	}
	conf := filepath.Join(dir, "syslog-ng.conf")
	persist := filepath.Join(dir, "syslog-ng.persist")
	if err := os.WriteFile(conf, []byte(Config(o)), 0o644); err != nil {
		return nil, fmt.Errorf("start syslog-ng: %w", err)
	}
	ctl := filepath.Join(dir, "syslog-ng.ctl")
	c, err := redistest.StartCommand(ctx, redistest.CommandOptions{
		Name:    "syslog-ng",
		Path:    "syslog-ng",
		BaseDir: o.BaseDir,
		Args: []string{"-F", "--no-caps", "-f", conf, "-R", persist, "-p", filepath.Join(dir, "syslog-ng.pid"),
			"-c", ctl, "--stderr"},
		Ready: func(context.Context) error {
			if _, err := os.Stat(ctl); err != nil {
				return fmt.Errorf("no control socket yet: %w", err)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return &SyslogNG{Command: c}, nil
}

// New starts syslog-ng for a test and closes it in Cleanup (its log is
// printed if the test failed).
func New(t redistest.TB, o Options) *SyslogNG {
	t.Helper()
	s, err := Start(context.Background(), o)
	if err != nil {
		if errors.Is(err, redistest.ErrBinaryMissing) && os.Getenv("CI") == "" {
			t.Skipf("syslog-ng not installed (apt-get install syslog-ng-core syslog-ng-mod-http): %v", err)
		}
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("----- syslog-ng log:\n%s", s.Logs())
		}
		_ = s.Close()
	})
	return s
}
