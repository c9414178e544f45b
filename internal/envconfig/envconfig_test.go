package envconfig

import (
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

type testConfig struct {
	Addr    string        `env:"ADDR" envDefault:":9000" desc:"listen address"`
	Peers   []string      `env:"PEERS" envSeparator:"," desc:"comma-separated peers"`
	Count   int           `env:"COUNT" envDefault:"3" desc:"how many"`
	Timeout time.Duration `env:"TIMEOUT,notEmpty" envDefault:"1s" desc:"a timeout"`
	Secret  string        `env:"SECRET" desc:"no default"`
	ignored int
}

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestVariables(t *testing.T) {
	got := Variables[testConfig]("T_")
	want := []Variable{
		{"T_ADDR", ":9000", "listen address"},
		{"T_PEERS", "", "comma-separated peers"},
		{"T_COUNT", "3", "how many"},
		{"T_TIMEOUT", "1s", "a timeout"},
		{"T_SECRET", "", "no default"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d variables %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("variable %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    testConfig
		wantErr []string // each must appear in the error
	}{
		{
			name: "defaults",
			want: testConfig{Addr: ":9000", Count: 3, Timeout: time.Second},
		},
		{
			name: "empty means default",
			env:  map[string]string{"T_ADDR": "", "T_COUNT": ""},
			want: testConfig{Addr: ":9000", Count: 3, Timeout: time.Second},
		},
		{
			name: "set values",
			env:  map[string]string{"T_ADDR": "h:1", "T_PEERS": "a:1, b:2", "T_COUNT": "7", "T_TIMEOUT": "2ms", "T_SECRET": "x"},
			want: testConfig{Addr: "h:1", Peers: []string{"a:1", " b:2"}, Count: 7, Timeout: 2 * time.Millisecond, Secret: "x"},
		},
		{
			name: "unprefixed names are not read",
			env:  map[string]string{"ADDR": "h:1", "COUNT": "9"},
			want: testConfig{Addr: ":9000", Count: 3, Timeout: time.Second},
		},
		{
			name:    "every parse error names its variable",
			env:     map[string]string{"T_COUNT": "many", "T_TIMEOUT": "soon"},
			wantErr: []string{"T_COUNT: not a valid int: ", "T_TIMEOUT: not a valid time.Duration: "},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkParse(t, "T_", tc.env, tc.want, tc.wantErr) })
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name, variable string
		env            map[string]string
		want           string
	}{
		{"set", "ADDR", map[string]string{"T_ADDR": "h:1"}, "h:1"},
		{"default", "ADDR", nil, ":9000"},
		{"empty means default", "ADDR", map[string]string{"T_ADDR": ""}, ":9000"},
		{"no default", "SECRET", nil, ""},
		{"tag options", "TIMEOUT", nil, "1s"},
		{"not a field", "OTHER", map[string]string{"T_OTHER": "v"}, "v"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Lookup[testConfig]("T_", tc.variable, getenv(tc.env)); got != tc.want {
				t.Errorf("Lookup(%s) = %q, want %q", tc.variable, got, tc.want)
			}
		})
	}
}

func TestPrintTable(t *testing.T) {
	var b strings.Builder
	if err := PrintTable(&b, Variables[testConfig]("T_")); err != nil {
		t.Fatal(err)
	}
	want := "VARIABLE   DEFAULT  DESCRIPTION\n" +
		"T_ADDR     :9000    listen address\n" +
		"T_PEERS    -        comma-separated peers\n" +
		"T_COUNT    3        how many\n" +
		"T_TIMEOUT  1s       a timeout\n" +
		"T_SECRET   -        no default\n"
	if b.String() != want {
		t.Errorf("table\n%s\nwant\n%s", b.String(), want)
	}
}

func TestReadSecret(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		file    string
		want    string
		wantErr string
	}{
		{name: "neither", want: ""},
		{name: "value only", value: "direct", want: "direct"},
		{name: "file, line break stripped", file: "testdata/password", want: "s3cret"},
		{name: "value wins (Validate reports the conflict)", value: "direct", file: "testdata/password", want: "direct"},
		{name: "missing file", file: "testdata/nope", wantErr: "T_SECRET_FILE: read testdata/nope: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.value
			err := ReadSecret(&got, tc.file, "T_SECRET_FILE")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("secret = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTrimList(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"nil", nil, []string{}},
		{"clean", []string{"a:1", "b:2"}, []string{"a:1", "b:2"}},
		{"spaces", []string{" a:1", "b:2 ", "\tc:3\n"}, []string{"a:1", "b:2", "c:3"}},
		{"empty elements dropped", []string{"a:1", " ", "", "b:2"}, []string{"a:1", "b:2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := TrimList(tc.in)
			if got == nil || strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Errorf("TrimList(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		add  func(p *Problems)
		want []string // the joined error's lines; none: nil error
	}{
		{"none", func(p *Problems) {}, nil},
		{"valid addresses", func(p *Problems) {
			p.HostPort("LISTEN", ":9501", false)
			p.HostPort("PEER", "redis-1:6379", true)
			p.HostPort("V6", "[::1]:6379", true)
		}, nil},
		{"every problem, in order", func(p *Problems) {
			p.Addf("KEY", "must not be empty")
			p.HostPort("LISTEN", "9501", false)
			p.HostPort("PEER", ":6379", true)
			p.Addf("COUNT", "%d is negative", -1)
		}, []string{
			"T_KEY: must not be empty",
			`T_LISTEN: "9501" is not host:port: address 9501: missing port in address`,
			`T_PEER: ":6379" has no host`,
			"T_COUNT: -1 is negative",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Problems{Prefix: "T_"}
			tc.add(&p)
			err := p.Err()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Err() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Err() = nil, want %q", tc.want)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Err() lines\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestSlogLevel(t *testing.T) {
	tests := []struct {
		value   string
		want    slog.Level
		wantErr bool
	}{
		{"debug", slog.LevelDebug, false},
		{"info", slog.LevelInfo, false},
		{"WARN", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"loud", 0, true},
		{"", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			got, err := SlogLevel(tc.value)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "is not debug, info, warn or error") {
					t.Fatalf("SlogLevel(%q) = %v, %v; want an error", tc.value, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("SlogLevel(%q) = %v, %v; want %v", tc.value, got, err, tc.want)
			}
		})
	}
}

func TestJoin(t *testing.T) {
	validate := func(c testConfig) error {
		p := Problems{Prefix: "T_"}
		if c.Count < 1 {
			p.Addf("COUNT", "%d must be at least 1", c.Count)
		}
		if c.Timeout <= 0 {
			p.Addf("TIMEOUT", "%s must be positive", c.Timeout)
		}
		if c.Secret == "" {
			p.Addf("SECRET", "must be set")
		}
		return errors.Join(p.Err(), errors.New("not about one variable"))
	}
	tests := []struct {
		name string
		env  map[string]string
		want []string // the joined error's lines
	}{
		{name: "validation only", env: map[string]string{"T_COUNT": "0"}, want: []string{
			"T_COUNT: 0 must be at least 1", "T_SECRET: must be set", "not about one variable"}},
		{name: "parse and validation errors together, none twice", env: map[string]string{"T_COUNT": "many", "T_TIMEOUT": "soon"}, want: []string{
			`T_COUNT: not a valid int: strconv.ParseInt: parsing "many": invalid syntax`,
			`T_TIMEOUT: not a valid time.Duration: unable to parse duration: time: invalid duration "soon"`,
			"T_SECRET: must be set", "not about one variable"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg testConfig
			perr := Parse(&cfg, "T_", getenv(tc.env))
			err := Join(perr, validate(cfg))
			if err == nil {
				t.Fatalf("Join = nil, want %q", tc.want)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Join lines\n%q\nwant\n%q", got, tc.want)
			}
			var ve *VarError
			if !errors.As(err, &ve) || !strings.HasPrefix(ve.Name, "T_") {
				t.Errorf("errors.As(*VarError) = %+v", ve)
			}
		})
	}
	if err := Join(nil, nil); err != nil {
		t.Errorf("Join(nil, nil) = %v", err)
	}
}

// Shared is a part several configurations embed (exported: env sets only
// exported fields).
type Shared struct {
	Host  string `env:"HOST" envDefault:"h:1" desc:"shared host"`
	Tries int    `env:"TRIES" desc:"shared tries"`
}

type embeddingConfig struct {
	First string `env:"FIRST" desc:"before the embedded part"`
	Shared
	Key  string `env:"KEY" desc:"default from Go"`
	Last int    `env:"LAST" envDefault:"5" desc:"after the embedded part"`
}

func (embeddingConfig) EnvDefaults() map[string]string {
	return map[string]string{"KEY": "from-go", "TRIES": "2"}
}

func TestEmbedded(t *testing.T) {
	wantVars := []Variable{
		{"E_FIRST", "", "before the embedded part"},
		{"E_HOST", "h:1", "shared host"},
		{"E_TRIES", "2", "shared tries"},
		{"E_KEY", "from-go", "default from Go"},
		{"E_LAST", "5", "after the embedded part"},
	}
	if got := Variables[embeddingConfig]("E_"); !reflect.DeepEqual(got, wantVars) {
		t.Errorf("Variables\n%+v\nwant\n%+v", got, wantVars)
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    embeddingConfig
		wantErr []string
	}{
		{
			name: "defaults, tags and EnvDefaults",
			want: embeddingConfig{Shared: Shared{Host: "h:1", Tries: 2}, Key: "from-go", Last: 5},
		},
		{
			name: "embedded variables set",
			env:  map[string]string{"E_FIRST": "a", "E_HOST": "x:2", "E_TRIES": "9", "E_KEY": "k", "E_LAST": ""},
			want: embeddingConfig{First: "a", Shared: Shared{Host: "x:2", Tries: 9}, Key: "k", Last: 5},
		},
		{
			name:    "an embedded variable's parse error names it",
			env:     map[string]string{"E_TRIES": "often", "E_LAST": "x"},
			wantErr: []string{"E_TRIES: not a valid int: ", "E_LAST: not a valid int: "},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkParse(t, "E_", tc.env, tc.want, tc.wantErr) })
	}
	lookups := []struct{ variable, want string }{{"HOST", "h:1"}, {"TRIES", "2"}, {"KEY", "from-go"}}
	for _, l := range lookups {
		if got := Lookup[embeddingConfig]("E_", l.variable, getenv(nil)); got != l.want {
			t.Errorf("Lookup(%s) = %q, want %q", l.variable, got, l.want)
		}
	}
}

// checkParse parses env with prefix into a T and wants either want or an
// error containing each of wantErr.
func checkParse[T any](t *testing.T, prefix string, env map[string]string, want T, wantErr []string) {
	t.Helper()
	var got T
	err := Parse(&got, prefix, getenv(env))
	if len(wantErr) > 0 {
		if err == nil {
			t.Fatalf("no error, parsed %+v", got)
		}
		for _, w := range wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error lacks %q:\n%v", w, err)
			}
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
