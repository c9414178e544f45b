// Package cli is the command-line plumbing every sluice binary shares: a
// bad command line is a usage error (exit 2, the usage went to stderr),
// and an error is printed once, by the exit.
package cli

import (
	"errors"
	"fmt"
	"io"
)

// UsageError is a bad command line.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }

func (e UsageError) Unwrap() error { return e.Err }

// Usage marks err as a bad command line.
func Usage(err error) error { return UsageError{err} }

// Exit prints err, once, as "<name>: <err>" on stderr and returns the exit
// status: 0 without an error, 2 for a usage error, 1 for any other.
func Exit(name string, err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	if errors.As(err, new(UsageError)) {
		return 2
	}
	return 1
}
