package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"testing"
)

func TestGroupErrors(t *testing.T) {
	reset := func(localPort int) error {
		return fmt.Errorf("wait for acks: %w", &net.OpError{Op: "read", Net: "tcp",
			Source: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: localPort},
			Addr:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9501},
			Err:    errors.New("connection reset by peer")})
	}
	timeout := fmt.Errorf("wait for acks: %w", context.DeadlineExceeded)
	tests := []struct {
		name string
		errs []error
		want []string
	}{
		{name: "none", errs: []error{nil, nil}, want: []string{}},
		{name: "one", errs: []error{nil, timeout}, want: []string{"wait for acks: context deadline exceeded (conn 1)"}},
		{name: "same cause on every conn, ranges", errs: []error{timeout, timeout, timeout, nil, timeout, nil, timeout, timeout},
			want: []string{"wait for acks: context deadline exceeded (conns 0-2, 4, 6-7)"}},
		{name: "causes in order of first appearance", errs: []error{reset(40001), timeout, reset(40002), timeout},
			want: []string{
				"wait for acks: read tcp 127.0.0.1:9501: connection reset by peer (conns 0, 2)",
				"wait for acks: context deadline exceeded (conns 1, 3)",
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := GroupErrors(tc.errs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("GroupErrors =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
