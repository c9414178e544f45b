//go:build multihost

package multihost_test

import "context"

func (c *cluster) replaceA(ctx context.Context) result {
	c.t.Skip("not written yet")
	return result{}
}

func (c *cluster) rollingUpgrade(ctx context.Context) result {
	c.t.Skip("not written yet")
	return result{}
}
