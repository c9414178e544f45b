//go:build sluicedeps

package sluice

import (
	_ "github.com/caarlos0/env/v11"
	_ "github.com/hashicorp/hcl/v2"
	_ "github.com/hashicorp/hcl/v2/hclparse"
	_ "github.com/heptiolabs/healthcheck"
	_ "github.com/pires/go-proxyproto"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/testcontainers/testcontainers-go"
	_ "github.com/testcontainers/testcontainers-go/network"
	_ "golang.org/x/sync/errgroup"
	_ "gonum.org/v1/plot"
	_ "gopkg.in/yaml.v3"
)
