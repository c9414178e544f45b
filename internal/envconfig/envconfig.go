// Package envconfig loads a service's configuration struct from prefixed
// environment variables (caarlos0/env/v11 `env` and `envDefault` tags) and
// provides what every sluice binary does around that: parse errors that name
// their variable, the `-h` variable table built from the `desc` tags, secrets
// read from `*_FILE` variables and comma-list trimming.
//
// The struct stays in its service, with its own defaults and Validate().
// Its fields are tagged fields and, one level deep, embedded structs of
// tagged fields (a shared part such as redisconn.Config): their variables
// take the same prefix and stand where the struct is embedded. A default
// that lives in Go rather than in a tag comes from the struct's
// EnvDefaults method (see Defaulter).
package envconfig

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/caarlos0/env/v11"
)

// Variable describes one environment variable of a configuration struct.
type Variable struct {
	Name        string // with the prefix, e.g. INGEST_LISTEN_ADDR
	Default     string // the envDefault tag; empty if there is none
	Description string // the desc tag
}

// Defaulter is a configuration struct with defaults that are Go values
// (a constant shared with other code) instead of envDefault tags.
// EnvDefaults maps variable names without prefix to their default; it
// overrides an envDefault tag, an embedded struct's included.
type Defaulter interface {
	EnvDefaults() map[string]string
}

// Variables lists the variables of the struct T in declaration order, those
// of an embedded struct where it is embedded; fields without an `env` tag
// are left out.
func Variables[T any](prefix string) []Variable {
	var defaults map[string]string
	if d, ok := any(*new(T)).(Defaulter); ok {
		defaults = d.EnvDefaults()
	}
	var out []Variable
	for _, f := range fields(reflect.TypeFor[T]()) {
		name := envName(f)
		def := f.Tag.Get("envDefault")
		if d, ok := defaults[name]; ok {
			def = d
		}
		out = append(out, Variable{Name: prefix + name, Default: def, Description: f.Tag.Get("desc")})
	}
	return out
}

// fields lists the fields of t that have an `env` tag, with those of its
// embedded structs (one level) in their place.
func fields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		if envName(f) != "" {
			out = append(out, f)
			continue
		}
		if f.Anonymous && f.IsExported() && f.Type.Kind() == reflect.Struct { // env fills exported ones only
			for j := range f.Type.NumField() {
				if g := f.Type.Field(j); envName(g) != "" {
					out = append(out, g)
				}
			}
		}
	}
	return out
}

// envName is the variable name of a field without prefix and tag options.
func envName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	return name
}

// Parse fills cfg from the variables of T read through getenv; an unset or
// empty variable gets its default (Variables). Each parse error names its variable
// and the expected type ("INGEST_BATCH_MAX: not a valid int: ...").
// Validation is the caller's: Parse checks only that values parse.
func Parse[T any](cfg *T, prefix string, getenv func(string) string) error {
	environ := map[string]string{}
	for _, v := range Variables[T](prefix) {
		if val := getenv(v.Name); val != "" {
			environ[v.Name] = val
		} else if v.Default != "" {
			environ[v.Name] = v.Default
		}
	}
	if err := env.ParseWithOptions(cfg, env.Options{Prefix: prefix, Environment: environ}); err != nil {
		return namedParseErrors[T](err, prefix)
	}
	return nil
}

// namedParseErrors rewrites env's per-field errors so each names its
// variable and the value's expected type.
func namedParseErrors[T any](err error, prefix string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("parse %s* variables: %w", prefix, err)
	}
	t := reflect.TypeFor[T]()
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := t.FieldByName(pe.Name); ok {
				errs = append(errs, &VarError{Name: prefix + envName(f), Err: fmt.Errorf("not a valid %s: %w", pe.Type, pe.Err)})
				continue
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// VarError is a problem with one variable, as Parse and Problems report it:
// "<Name>: <Err>".
type VarError struct {
	Name string // with the prefix, e.g. INGEST_BATCH_MAX
	Err  error
}

func (e *VarError) Error() string { return e.Name + ": " + e.Err.Error() }

func (e *VarError) Unwrap() error { return e.Err }

// Join reports the parse errors and the validation problems of one load
// together, so that a single run names every bad setting:
//
//	perr := envconfig.Parse(&cfg, Prefix, getenv)
//	return cfg, envconfig.Join(perr, cfg.Validate())
//
// A problem that invalid reports for a variable that did not parse is left
// out: Validate judged the zero value Parse left, not the setting.
func Join(parseErr, invalid error) error {
	failed := map[string]bool{}
	for _, e := range flatten(parseErr) {
		var ve *VarError
		if errors.As(e, &ve) {
			failed[ve.Name] = true
		}
	}
	errs := flatten(parseErr)
	for _, e := range flatten(invalid) {
		var ve *VarError
		if errors.As(e, &ve) && failed[ve.Name] {
			continue
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// flatten lists the errors that err joins (errors.Join, nested or not), or
// err itself.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

// Lookup is the value variable name (without prefix) of T would get from
// Parse: its setting through getenv, else its envDefault. Subcommands that
// need one setting (a healthcheck's admin address) use it instead of a
// full load.
func Lookup[T any](prefix, name string, getenv func(string) string) string {
	for _, v := range Variables[T](prefix) {
		if v.Name == prefix+name {
			if val := getenv(v.Name); val != "" {
				return val
			}
			return v.Default
		}
	}
	return getenv(prefix + name)
}

// PrintTable writes the variable table of a `-h` help: one row per
// variable with its default ("-" if none) and description.
func PrintTable(w io.Writer, vars []Variable) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tDESCRIPTION")
	for _, v := range vars {
		def := v.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, def, v.Description)
	}
	return tw.Flush()
}

// ReadSecret resolves a secret given either directly or as a file (the
// `*_PASSWORD` / `*_PASSWORD_FILE` pair): if file is set and *dst is empty,
// *dst becomes the file's content without trailing line breaks. fileVar
// names the file variable in the error. Setting both is left to the
// caller's Validate to report.
func ReadSecret(dst *string, file, fileVar string) error {
	if file == "" || *dst != "" {
		return nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%s: read %s: %w", fileVar, file, err)
	}
	*dst = strings.TrimRight(string(b), "\r\n")
	return nil
}

// TrimList trims the spaces around each element of a comma-separated list
// ("a:1, b:2") and drops the empty ones.
func TrimList(list []string) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
