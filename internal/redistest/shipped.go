package redistest

import (
	"fmt"
	"regexp"
	"strings"
)

// IngestPorts are one ingest process's loopback ports.
type IngestPorts struct {
	Data, NoAck, HTTP, Admin int
}

// ShippedPorts place the shipped haproxy.cfg on a test host.
type ShippedPorts struct {
	// Data, HTTP, NoAck and Stats are the loopback ports of the
	// frontends the file binds on :9501, :9502, :9503 and :8404.
	Data, HTTP, NoAck, Stats int
	// Ingests replace the Docker DNS server templates with static servers
	// on loopback (same options: checks on the admin port's /ready, PROXY
	// v2 towards the data port). None: the templates stay (no server).
	Ingests []IngestPorts
}

var (
	shippedBind = func(port string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^(\s*bind) :` + port + `\b`)
	}
	shippedSocket   = regexp.MustCompile(`(?m)^\s*stats socket .*$`)
	shippedTemplate = regexp.MustCompile(`(?m)^(\s*)server-template ingest \d+ "\$\{INGEST_HOST-ingest\}":(9501|9502|9503) resolvers docker init-addr none resolve-prefer ipv4(.*)$`)
	shippedAdmin    = regexp.MustCompile(`(?m)^(\s*default-server check port) 8086\b`)
)

// ShippedHAProxyConfig rewrites the shipped haproxy.cfg (its text) for a
// test host, changing only what cannot run there: the binds move to
// loopback ports, the runtime socket (under /run/haproxy, which the image
// creates) is dropped, and the ingest servers are static. It fails when
// the file no longer has the lines it rewrites.
func ShippedHAProxyConfig(cfg string, p ShippedPorts) (string, error) {
	must := func(re *regexp.Regexp, repl func(m []string) string) error {
		if !re.MatchString(cfg) {
			return fmt.Errorf("haproxy.cfg has no line matching %q", re)
		}
		cfg = re.ReplaceAllStringFunc(cfg, func(s string) string { return repl(re.FindStringSubmatch(s)) })
		return nil
	}
	binds := []struct {
		port string
		to   int
	}{{"9501", p.Data}, {"9502", p.HTTP}, {"9503", p.NoAck}, {"8404", p.Stats}}
	for _, b := range binds {
		if err := must(shippedBind(b.port), func(m []string) string { return fmt.Sprintf("%s 127.0.0.1:%d", m[1], b.to) }); err != nil {
			return "", err
		}
	}
	if err := must(shippedSocket, func([]string) string { return "" }); err != nil {
		return "", err
	}
	if len(p.Ingests) == 0 {
		return cfg, nil
	}
	err := must(shippedTemplate, func(m []string) string {
		var lines []string
		for i, in := range p.Ingests {
			port := map[string]int{"9501": in.Data, "9502": in.HTTP, "9503": in.NoAck}[m[2]]
			lines = append(lines, fmt.Sprintf("%sserver ingest%d 127.0.0.1:%d check port %d%s", m[1], i+1, port, in.Admin, m[3]))
		}
		return strings.Join(lines, "\n")
	})
	if err != nil {
		return "", err
	}
	// The per-server check ports above win; drop the shared one.
	return cfg, must(shippedAdmin, func(m []string) string { return "    default-server check" })
}

// ShippedUsers returns the ACL `user` lines of a redis.conf text (the
// shipped redis/redis.conf) the way the image's entrypoint completes them:
// every user but default gets ">" + password(name) appended. Pass them as
// RedisOptions.ExtraConfig with Username and Password of one of them, so a
// test runs exactly the permissions that ship. It fails when the text has
// no user lines or password returns "" for a user.
func ShippedUsers(conf string, password func(user string) string) ([]string, error) {
	var out []string
	for _, line := range strings.Split(conf, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "user ") {
			continue
		}
		name := strings.Fields(line)[1]
		if name != "default" {
			pw := password(name)
			if pw == "" {
				return nil, fmt.Errorf("no password for ACL user %q", name)
			}
			line += " >" + pw
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("redis.conf has no ACL user lines")
	}
	return out, nil
}
