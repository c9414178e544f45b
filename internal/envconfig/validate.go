package envconfig

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
)

// Problems collects what a Config's Validate finds wrong, each problem
// naming its variable, so that one run reports all of them:
//
//	p := envconfig.Problems{Prefix: Prefix}
//	p.HostPort("ADMIN_ADDR", c.AdminAddr, false)
//	if c.Key == "" {
//		p.Addf("KEY", "must not be empty")
//	}
//	return p.Err()
type Problems struct {
	Prefix string // of every variable name passed in
	errs   []error
}

// Addf records a problem with variable name (without prefix):
// "<prefix><name>: <message>".
func (p *Problems) Addf(name, format string, args ...any) {
	p.errs = append(p.errs, &VarError{Name: p.Prefix + name, Err: fmt.Errorf(format, args...)})
}

// HostPort records a problem unless value is host:port; with hostRequired
// the host must not be empty either (":8086" is fine for a listen address,
// not for a peer).
func (p *Problems) HostPort(name, value string, hostRequired bool) {
	host, _, err := net.SplitHostPort(value)
	if err != nil {
		p.Addf(name, "%q is not host:port: %v", value, err)
	} else if hostRequired && host == "" {
		p.Addf(name, "%q has no host", value)
	}
}

// Err joins every recorded problem; nil if there is none.
func (p *Problems) Err() error { return errors.Join(p.errs...) }

// SlogLevel parses a log level setting: debug, info, warn or error.
func SlogLevel(value string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(value)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", value)
	}
	return l, nil
}
