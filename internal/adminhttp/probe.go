package adminhttp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// LocalURL is http://127.0.0.1:<port of addr><path>: the admin server of
// this container, whatever interface addr binds. addrVar names the
// variable addr comes from, for the error.
func LocalURL(addrVar, addr, path string) (string, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", addrVar, addr, err)
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port) + path, nil
}

// Healthcheck is the `healthcheck` subcommand: it GETs /ready on the local
// port of the admin address addr (from variable addrVar) within 2s and
// prints "ready" if the answer is 200; otherwise it returns an error, so
// the process exits non-zero.
func Healthcheck(ctx context.Context, addrVar, addr string, stdout io.Writer) error {
	url, err := LocalURL(addrVar, addr, "/ready")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: %s %s", url, resp.Status, bytes.TrimSpace(body))
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}
