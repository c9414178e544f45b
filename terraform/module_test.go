package terraform_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-ingest/sluice/terraform/internal/topology"
	"github.com/zclconf/go-cty/cty"

	"github.com/sluice-ingest/sluice/internal/redisconn"
)

// aspects are the ways compare can find compose.yaml and the module apart.
var aspects = []string{"services", "terraform", "images", "replicas", "env", "ports", "files", "volumes",
	"healthcheck", "command", "restart", "stop", "hostname", "logging", "depends_on", "network"}

// TestModuleMatchesCompose: the Terraform module lays out the same topology
// as compose/compose.yaml, aspect by aspect.
func TestModuleMatchesCompose(t *testing.T) {
	composeTop, err := topology.LoadCompose(filepath.Join("..", "compose", "compose.yaml"))
	if err != nil {
		t.Fatalf("load compose: %v", err)
	}
	_, tfTop, err := topology.LoadModule(".")
	if err != nil {
		t.Fatalf("load terraform module: %v", err)
	}
	for _, name := range tfTop.Names() {
		s := tfTop[name]
		t.Logf("terraform %s: %s ×%d env=%d ports=%q files=%d volumes=%q depends=%d",
			name, s.Image, s.Replicas, len(s.Env), s.Ports, len(s.Files), s.Volumes, len(s.Depends))
	}
	diffs := topology.Compare(composeTop, tfTop)
	for _, aspect := range aspects {
		t.Run(aspect, func(t *testing.T) {
			for _, d := range diffs {
				if d.Aspect == aspect {
					t.Error(d)
				}
			}
		})
	}
	for _, d := range diffs {
		if !slices.Contains(aspects, d.Aspect) {
			t.Errorf("unlisted aspect: %v", d)
		}
	}

	// Both sides must also be the topology of ARCHITECTURE.md, so that two
	// equally wrong files do not pass.
	want := []struct {
		name     string
		image    string
		replicas int
		ports    []string
	}{
		{"redis-1", "sluice/redis", 1, nil},
		{"redis-2", "sluice/redis", 1, nil},
		{"redis-3", "sluice/redis", 1, nil},
		{"sentinel-1", "sluice/redis", 1, nil},
		{"sentinel-2", "sluice/redis", 1, nil},
		{"sentinel-3", "sluice/redis", 1, nil},
		{"ingest", "sluice/ingest", 3, nil},
		{"haproxy", "sluice/haproxy", 1, []string{"127.0.0.1:8404:8404/tcp", "127.0.0.1:9501:9501/tcp", "127.0.0.1:9502:9502/tcp", "127.0.0.1:9503:9503/tcp"}},
		{"backup", "sluice/backup", 1, nil},
	}
	for _, side := range []struct {
		name string
		top  topology.Topology
	}{{"compose", composeTop}, {"terraform", tfTop}} {
		t.Run("architecture/"+side.name, func(t *testing.T) {
			if len(side.top) != len(want) {
				t.Errorf("%d services %q, want %d", len(side.top), side.top.Names(), len(want))
			}
			for _, w := range want {
				s := side.top[w.name]
				if s == nil {
					t.Errorf("service %s missing", w.name)
					continue
				}
				if s.Image != w.image || s.Replicas != w.replicas || !slices.Equal(s.Ports, w.ports) {
					t.Errorf("service %s: image %s ×%d ports %q, want %s ×%d ports %q",
						w.name, s.Image, s.Replicas, s.Ports, w.image, w.replicas, w.ports)
				}
				if s.Health == "" {
					t.Errorf("service %s has no healthcheck", w.name)
				}
			}
		})
	}
}

// driftEdit is one exact text replacement in a copy of the aligned fixture
// (testdata/drift/aligned): Old must occur exactly once in File.
type driftEdit struct {
	File     string // "main.tf" or "compose.yaml"
	Old, New string
}

// applyEdit replaces the single occurrence of old in src by new; a missing or
// ambiguous old, or an edit that changes nothing, is an error.
func applyEdit(src, old, new string) (string, error) {
	if old == "" || old == new {
		return "", fmt.Errorf("edit %q -> %q changes nothing", old, new)
	}
	if n := strings.Count(src, old); n != 1 {
		return "", fmt.Errorf("edit target %q occurs %d times, want exactly 1", old, n)
	}
	return strings.Replace(src, old, new, 1), nil
}

// driftFixture writes the aligned fixture with edits applied into a temporary
// directory laid out like testdata/drift (the shared haproxy.cfg and
// entrypoint.sh one level up, modes kept) and returns the fixture directory.
// Any edit that does not apply fails the test.
func driftFixture(t *testing.T, edits []driftEdit) string {
	t.Helper()
	src := filepath.Join("testdata", "drift")
	root := t.TempDir()
	for _, shared := range []string{"haproxy.cfg", "entrypoint.sh"} {
		copyFile(t, filepath.Join(src, shared), filepath.Join(root, shared))
	}
	files := map[string]string{}
	for _, name := range []string{"main.tf", "compose.yaml"} {
		raw, err := os.ReadFile(filepath.Join(src, "aligned", name))
		if err != nil {
			t.Fatalf("read aligned fixture: %v", err)
		}
		files[name] = string(raw)
	}
	for _, e := range edits {
		text, ok := files[e.File]
		if !ok {
			t.Fatalf("edit of unknown fixture file %q", e.File)
		}
		text, err := applyEdit(text, e.Old, e.New)
		if err != nil {
			t.Fatalf("%s: %v", e.File, err)
		}
		files[e.File] = text
	}
	dir := filepath.Join(root, "fixture")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// copyFile copies src to dst with the same permission bits (the executable
// bit of entrypoint.sh is what one case is about).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, raw, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, fi.Mode().Perm()); err != nil { // not at the umask's mercy
		t.Fatal(err)
	}
}

// TestApplyEditRejectsBadTargets: a drift case whose edit no longer matches the
// aligned fixture must fail, not silently test the aligned pair.
func TestApplyEditRejectsBadTargets(t *testing.T) {
	cases := []struct {
		name, src, old, new string
		wantErr             bool
	}{
		{"once", "a = 1\nb = 2\n", "b = 2", "b = 3", false},
		{"missing", "a = 1\nb = 2\n", "c = 2", "c = 3", true},
		{"ambiguous", "a = 1\na = 1\n", "a = 1", "a = 2", true},
		{"empty target", "a = 1\n", "", "b = 2", true},
		{"no change", "a = 1\n", "a = 1", "a = 1", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := applyEdit(tc.src, tc.old, tc.new)
			if (err != nil) != tc.wantErr {
				t.Fatalf("applyEdit error = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && got != strings.Replace(tc.src, tc.old, tc.new, 1) {
				t.Errorf("applyEdit = %q", got)
			}
		})
	}
}

// wantDifference is a difference a drift case expects; Msg is matched as a
// substring of the reported one.
type wantDifference struct{ Aspect, Service, Msg string }

// TestComparisonDetectsDrift: every case is the aligned fixture pair
// (testdata/drift/aligned) with a few exact edits that make compose.yaml and
// the module disagree in one known way; compare must report exactly that, and
// nothing for the unedited pair.
func TestComparisonDetectsDrift(t *testing.T) {
	const tf, yml = "main.tf", "compose.yaml"
	cases := []struct {
		name  string
		edits []driftEdit
		want  []wantDifference
	}{
		{"aligned", nil, nil},
		{"missing-env", []driftEdit{
			{tf, "    INGEST_LISTEN       = \":9501\"\n    INGEST_MIN_REPLICAS = 2\n", "    INGEST_LISTEN = \":9501\"\n"},
		}, []wantDifference{{"env", "ingest", "INGEST_MIN_REPLICAS only in compose"}}},
		{"env-value", []driftEdit{
			{tf, "INGEST_MIN_REPLICAS = 2", "INGEST_MIN_REPLICAS = 1"},
		}, []wantDifference{{"env", "ingest", `env var INGEST_MIN_REPLICAS: compose "2", terraform "1"`}}},
		{"extra-env", []driftEdit{
			{tf, `["HAPROXY_STATS_PASSWORD=${var.stats_password}"]`, `["HAPROXY_STATS_PASSWORD=${var.stats_password}", "HAPROXY_DEBUG=1"]`},
		}, []wantDifference{{"env", "haproxy", "HAPROXY_DEBUG only in terraform"}}},
		{"port", []driftEdit{
			{tf, "ip       = var.bind_address", `ip       = "0.0.0.0"`},
		}, []wantDifference{
			{"ports", "haproxy", "127.0.0.1:9501:9501/tcp only in compose"},
			{"ports", "haproxy", "0.0.0.0:9501:9501/tcp only in terraform"},
		}},
		{"replicas", []driftEdit{
			{tf, "default     = 3", "default     = 2"},
		}, []wantDifference{{"replicas", "ingest", "compose runs 3, terraform runs 2"}}},
		{"missing-service", []driftEdit{
			{tf, "resource \"docker_volume\" \"backups\" {\n  name = \"fixture-backups\"\n}\n\n", ""},
			{tf, "\nresource \"docker_container\" \"backup\" {\n" +
				"  name  = \"fixture-backup\"\n" +
				"  image = \"sluice/backup:${var.image_tag}\"\n" +
				"  networks_advanced {\n    name    = docker_network.net.name\n    aliases = [\"backup\"]\n  }\n" +
				"  volumes {\n    volume_name    = docker_volume.backups.name\n    container_path = \"/backups\"\n  }\n" +
				"  healthcheck {\n    test = [\"CMD\", \"/backup\", \"healthcheck\"]\n  }\n}\n", ""},
		}, []wantDifference{{"services", "backup", "in compose, missing in terraform"}}},
		{"image", []driftEdit{
			{tf, `"sluice/ingest:${var.image_tag}"`, `"sluice/loadgen:${var.image_tag}"`},
		}, []wantDifference{{"images", "ingest", `compose image "sluice/ingest", terraform image "sluice/loadgen"`}}},
		{"config-file", []driftEdit{
			{tf, `file    = "/usr/local/etc/haproxy/haproxy.cfg"`, `file    = "/etc/haproxy/haproxy.cfg"`},
		}, []wantDifference{
			{"files", "haproxy", "haproxy.cfg -> /usr/local/etc/haproxy/haproxy.cfg only in compose"},
			{"files", "haproxy", "haproxy.cfg -> /etc/haproxy/haproxy.cfg only in terraform"},
		}},
		{"memory", []driftEdit{
			{yml, "    deploy:\n      replicas: 3\n", "    deploy:\n      replicas: 3\n    mem_limit: ${INGEST_MEM_LIMIT:-1g}\n"},
			{tf, "  env   = [for k, v in local.ingest_env : \"${k}=${v}\"]\n  wait  = true\n", "  env    = [for k, v in local.ingest_env : \"${k}=${v}\"]\n  memory = 512\n  wait   = true\n"},
		}, []wantDifference{{"memory", "ingest", `compose mem_limit "1024m", terraform memory "512m"`}}},
		{"healthcheck", []driftEdit{
			{tf, "retries  = 5", "retries  = 3"},
		}, []wantDifference{{"healthcheck", "ingest", `retries=3`}}},
		{"depends-on", []driftEdit{
			{tf, "wait  = true", "wait  = false"},
		}, []wantDifference{{"depends_on", "haproxy", "compose waits for ingest to be healthy, terraform does not"}}},
		{"runtime", []driftEdit{
			{tf, "  wait  = true\n", "  wait  = true\n" +
				"  # Drift: 30 s instead of 40 s, restart and logging forgotten.\n" +
				"  stop_timeout = 30\n"},
			{tf, "  depends_on = [docker_container.ingest]\n", "  depends_on = [docker_container.ingest]\n" +
				"  # Drift: another hostname, and the command lost an argument.\n" +
				"  hostname = \"proxy\"\n" +
				"  command  = [\"haproxy\"]\n"},
			{yml, "    image: sluice/ingest:${TAG:-dev}\n", "    image: sluice/ingest:${TAG:-dev}\n" +
				"    restart: unless-stopped\n" +
				"    stop_grace_period: 40s\n" +
				"    logging:\n      driver: json-file\n      options:\n        max-size: \"10m\"\n"},
			{yml, "    image: sluice/haproxy:${TAG:-dev}\n", "    image: sluice/haproxy:${TAG:-dev}\n" +
				"    hostname: haproxy\n" +
				"    command: [\"haproxy\", \"-V\"]\n"},
		}, []wantDifference{
			{"restart", "ingest", `compose restart "unless-stopped", terraform restart "no"`},
			{"stop", "ingest", `compose stop_grace_period "40s", terraform stop_timeout "30s"`},
			{"logging", "ingest", `compose logging "json-file max-size=10m", terraform logging ""`},
			{"hostname", "haproxy", `compose hostname "haproxy", terraform hostname "proxy"`},
			{"command", "haproxy", `compose command ["haproxy" "-V"], terraform command ["haproxy"]`},
		}},
		{"executable", []driftEdit{
			{tf, "    content = file(\"${path.module}/../haproxy.cfg\")\n  }\n", "    content = file(\"${path.module}/../haproxy.cfg\")\n  }\n" +
				"  # Drift: the script arrives without its executable bit (mode 0644).\n" +
				"  upload {\n    file    = \"/usr/local/bin/entrypoint.sh\"\n" +
				"    content = file(\"${path.module}/../entrypoint.sh\")\n  }\n"},
			{yml, "      - ../haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro\n", "      - ../haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro\n" +
				"      - ../entrypoint.sh:/usr/local/bin/entrypoint.sh:ro\n"},
		}, []wantDifference{{"terraform", "haproxy", "entrypoint.sh is executable, set executable = true"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := driftFixture(t, tc.edits)
			composeTop, err := topology.LoadCompose(filepath.Join(dir, "compose.yaml"))
			if err != nil {
				t.Fatalf("load compose: %v", err)
			}
			_, tfTop, err := topology.LoadModule(dir)
			if err != nil {
				t.Fatalf("load module: %v", err)
			}
			got := topology.Compare(composeTop, tfTop)
			for _, w := range tc.want {
				found := slices.ContainsFunc(got, func(d topology.Difference) bool {
					return d.Aspect == w.Aspect && d.Service == w.Service && strings.Contains(d.Msg, w.Msg)
				})
				if !found {
					t.Errorf("missing difference %v", w)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %d differences, want %d:", len(got), len(tc.want))
				for _, d := range got {
					t.Logf("  %v", d)
				}
			}
		})
	}
}

// TestVariables: every variable is typed and described; passwords are
// sensitive and have no default. The fixture proves the check bites.
func TestVariables(t *testing.T) {
	cases := []struct {
		dir  string
		want []string
	}{
		{".", nil},
		{filepath.Join("testdata", "variables"), []string{
			"variable db_password is a password but not sensitive = true",
			"variable db_password is a password with a default",
			"variable port has an empty description",
			"variable replicas has no description",
			"variable replicas has no type",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			m, err := topology.ParseModule(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Variables) == 0 {
				t.Fatal("no variables")
			}
			if got := m.VariableProblems(); !slices.Equal(got, tc.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestModuleShape: provider pin, the documented variables and the outputs.
func TestModuleShape(t *testing.T) {
	m, _, err := topology.LoadModule(".")
	if err != nil {
		t.Fatalf("load module: %v", err)
	}
	t.Run("provider", func(t *testing.T) {
		var source, version, required string
		for _, b := range m.Blocks {
			if b.Type != "terraform" {
				continue
			}
			if a := b.Body.Attributes["required_version"]; a != nil {
				v, _ := a.Expr.Value(nil)
				required = v.AsString()
			}
			for _, rp := range b.Body.Blocks {
				if rp.Type != "required_providers" || rp.Body.Attributes["docker"] == nil {
					continue
				}
				v, diags := rp.Body.Attributes["docker"].Expr.Value(nil)
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				source, version = v.GetAttr("source").AsString(), v.GetAttr("version").AsString()
			}
		}
		if source != "kreuzwerker/docker" || version != "~> 3.0" || required == "" {
			t.Errorf("docker provider %q %q, required_version %q; want kreuzwerker/docker ~> 3.0 and a required_version", source, version, required)
		}
	})
	t.Run("variables", func(t *testing.T) {
		for _, name := range []string{"docker_host", "image_tag", "ingest_replicas", "bind_address", "ingest_port",
			"stats_port", "redis_password", "haproxy_stats_password"} {
			if m.Variables[name] == nil {
				t.Errorf("variable %s missing", name)
			}
		}
		if got := m.Var("ingest_replicas"); !got.RawEquals(cty.NumberIntVal(3)) {
			t.Errorf("ingest_replicas default %#v, want 3", got)
		}
		if got := m.Var("bind_address"); !got.RawEquals(cty.StringVal("127.0.0.1")) {
			t.Errorf("bind_address default %#v, want 127.0.0.1", got)
		}
	})
	t.Run("outputs", func(t *testing.T) {
		want := map[string]string{
			"ingest_endpoint": "127.0.0.1:9501",
			"stats_url":       "http://127.0.0.1:8404/stats",
		}
		for name, value := range want {
			b := m.Outputs[name]
			if b == nil {
				t.Errorf("output %s missing", name)
				continue
			}
			if b.Body.Attributes["description"] == nil {
				t.Errorf("output %s has no description", name)
			}
			v, _, err := m.EvalAttr(b.Body, "value")
			if err != nil {
				t.Errorf("output %s: %v", name, err)
				continue
			}
			if got, _ := topology.AsString(v); got != value {
				t.Errorf("output %s = %q with default variables, want %q", name, got, value)
			}
		}
	})
}

// TestIngestReplicasFitServerTemplate: the ingest_replicas validation accepts
// exactly as many containers as haproxy.cfg's server-template has slots.
func TestIngestReplicasFitServerTemplate(t *testing.T) {
	cfg, err := os.ReadFile(filepath.Join("..", "haproxy", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	match := regexp.MustCompile(`(?m)^\s*server-template\s+\S+\s+(\d+)\s`).FindSubmatch(cfg)
	if match == nil {
		t.Fatal("no server-template line in haproxy.cfg")
	}
	slots, _ := strconv.Atoi(string(match[1]))
	m, err := topology.ParseModule(".")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		replicas int
		valid    bool
	}{{0, false}, {1, true}, {3, true}, {slots, true}, {slots + 1, false}}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.replicas), func(t *testing.T) {
			ok, err := m.Validate("ingest_replicas", cty.NumberIntVal(int64(tc.replicas)))
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.valid {
				t.Errorf("ingest_replicas = %d (server-template has %d slots): valid %v, want %v", tc.replicas, slots, ok, tc.valid)
			}
		})
	}
}

// TestArgumentsExistInProviderV3: terraform validate needs the provider, which
// cannot be downloaded here, so every argument and block the module writes is
// checked against the provider's documented 3.x schema (testdata). The
// fixture proves typos and post-3.0 arguments are caught.
func TestArgumentsExistInProviderV3(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "provider-schema-v3.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]json.RawMessage
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]topology.ProviderSchema{}
	for name, msg := range schema {
		if strings.HasPrefix(name, "_") {
			continue
		}
		var s topology.ProviderSchema
		if err := json.Unmarshal(msg, &s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		kinds[name] = s
	}
	cases := []struct {
		dir  string
		want []string
	}{
		{".", nil},
		{"multihost", nil},
		{filepath.Join("modules", "node"), nil},
		{filepath.Join("testdata", "schema-typo"), []string{
			`docker_container.c: block "network" not in the provider schema`,
			`docker_container.c: stop_timout not in the provider schema`,
			`docker_container.c: healthcheck.start_interval not in the provider schema`,
			`docker_service.s: resource type not covered by testdata/provider-schema-v3.json`,
			`provider docker: ssh not in the provider schema`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			m, err := topology.ParseModule(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			got := m.SchemaProblems(kinds)
			slices.Sort(got)
			slices.Sort(tc.want)
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestUncomparedSettingsFail: a setting the comparison does not understand,
// on either side, fails the load instead of drifting unnoticed.
func TestUncomparedSettingsFail(t *testing.T) {
	dir := filepath.Join("testdata", "uncompared")
	cases := []struct {
		name string
		load func() error
		want []string
	}{
		{"compose", func() error { _, err := topology.LoadCompose(filepath.Join(dir, "compose.yaml")); return err },
			[]string{`compose service ingest: key "ulimits" is not compared`, `compose service haproxy: key "deploy.resources" is not compared`}},
		{"terraform", func() error { _, _, err := topology.LoadModule(dir); return err },
			[]string{"argument memory_swap is not compared", "block ulimit is not compared"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.load()
			if err == nil {
				t.Fatal("load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// The queue key the module gives ingest is the one the Go code defaults to
// (redisconn.DefaultKey); TestModuleMatchesCompose holds every other
// container to compose.yaml, whose test checks the same.
func TestQueueKeyIsTheDefault(t *testing.T) {
	_, top, err := topology.LoadModule(".")
	if err != nil {
		t.Fatalf("load terraform module: %v", err)
	}
	if got := top["ingest"].EnvValue["INGEST_REDIS_KEY"]; got != redisconn.DefaultKey {
		t.Errorf("ingest: INGEST_REDIS_KEY=%q, want redisconn.DefaultKey %q", got, redisconn.DefaultKey)
	}
}
