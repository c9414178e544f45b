locals {
  images = {
    ingest  = "sluice/ingest:${var.image_tag}"
    redis   = "sluice/redis:${var.image_tag}"
    haproxy = "sluice/haproxy:${var.image_tag}"
  }
  prefix = "${var.project_name}-${var.domain}"

  sentinel_addrs = join(",", [for a in var.addresses : "${a}:${var.sentinel_port}"])
  log_opts = {
    max-size = "10m"
    max-file = "3"
  }
  # The same derivation as the single-host module (terraform/main.tf).
  user_passwords = { for u in ["replication", "sentinel", "ingest", "backup", "status", "consumer", "monitoring", "sentinels"] : u => sha256("${var.redis_password}/${u}") }

  redis_env = {
    REDIS_PASSWORD               = var.redis_password
    REDIS_REPLICATION_PASSWORD   = local.user_passwords["replication"]
    REDIS_SENTINEL_PASSWORD      = local.user_passwords["sentinel"]
    REDIS_INGEST_PASSWORD        = local.user_passwords["ingest"]
    REDIS_BACKUP_PASSWORD        = local.user_passwords["backup"]
    REDIS_STATUS_PASSWORD        = local.user_passwords["status"]
    REDIS_CONSUMER_PASSWORD      = local.user_passwords["consumer"]
    REDIS_MONITORING_PASSWORD    = local.user_passwords["monitoring"]
    SENTINEL_PASSWORD            = local.user_passwords["sentinels"]
    REDIS_SENTINELS              = local.sentinel_addrs
    REDIS_INITIAL_MASTER         = var.initial_master
    REDIS_ANNOUNCE_HOST          = var.address
    REDIS_PORT                   = var.redis_port
    SENTINEL_PORT                = var.sentinel_port
    SENTINEL_MASTER_NAME         = "sluice"
    SENTINEL_DOWN_AFTER_MS       = var.sentinel_down_after_ms
    SENTINEL_FAILOVER_TIMEOUT_MS = var.sentinel_failover_timeout_ms
    REDIS_MIN_REPLICAS_MAX_LAG   = var.redis_min_replicas_max_lag
    # Addresses, not Docker DNS names: leave resolv.conf alone.
    REDIS_DNS_OPTIONS = ""
  }

  # Ports of ingest container i (host networking: each its own).
  ingest_ports = [for i in range(var.ingest_replicas) : {
    ack   = var.ingest_port_base + 10 * i
    http  = var.ingest_port_base + 10 * i + 1
    noack = var.ingest_port_base + 10 * i + 2
    admin = var.ingest_port_base + 10 * i + 3
  }]

  ingest_env = {
    INGEST_SENTINEL_ADDRS    = local.sentinel_addrs
    INGEST_SENTINEL_MASTER   = "sluice"
    INGEST_REDIS_USERNAME    = "ingest"
    INGEST_REDIS_PASSWORD    = local.user_passwords["ingest"]
    INGEST_SENTINEL_PASSWORD = local.user_passwords["sentinels"]
    INGEST_REDIS_KEY         = "data_queue"
    INGEST_MIN_REPLICAS      = var.ingest_min_replicas
    INGEST_PROXY_PROTOCOL    = "true"
    INGEST_DRAIN_DELAY       = var.ingest_drain_delay
  }

  # Every domain runs the same number of ingest containers on the same ports, so each
  # HAProxy lists all of them from the addresses alone.
  ingest_servers = flatten([for d, a in var.addresses : [for i, p in local.ingest_ports : {
    name       = "ingest-h${d + 1}-${i + 1}"
    address    = a
    ack_port   = p.ack
    http_port  = p.http
    noack_port = p.noack
    admin_port = p.admin
  }]])

  haproxy_env = merge({
    HAPROXY_STATS_USER     = "admin"
    HAPROXY_STATS_PASSWORD = var.haproxy_stats_password
    HAPROXY_STATS_PORT     = var.stats_port
    }, var.vip == "" ? {} : {
    # The HAProxy entrypoint starts keepalived only when KEEPALIVED_VIP is set.
    KEEPALIVED_VIP            = var.vip
    KEEPALIVED_INTERFACE      = var.vip_interface
    KEEPALIVED_PRIORITY       = var.vrrp_priority
    KEEPALIVED_UNICAST_SRC_IP = var.address
    KEEPALIVED_UNICAST_PEER   = var.vrrp_peer
    KEEPALIVED_ROUTER_ID      = var.vrrp_router_id
  })
}

resource "docker_image" "redis" {
  name         = local.images.redis
  keep_locally = true
}

resource "docker_image" "ingest" {
  name         = local.images.ingest
  keep_locally = true
}

resource "docker_image" "haproxy" {
  count        = var.haproxy ? 1 : 0
  name         = local.images.haproxy
  keep_locally = true
}

# The Redis node and the Sentinel: the same image and environment; each has its command
# (the entrypoint's role), its state directory and its config file.
locals {
  redis_roles = {
    redis    = { state = "/data", conf = "redis.conf" }
    sentinel = { state = "/var/lib/sentinel", conf = "sentinel.conf" }
  }
}

resource "docker_volume" "data" {
  for_each = local.redis_roles
  name     = "${local.prefix}-${each.key}-data"
}

# ---- The Redis node (master on first boot if its address is initial_master, afterwards
# whatever the Sentinels say, redis/entrypoint.sh) and the Sentinel, on the host's network.
resource "docker_container" "redis" {
  for_each = local.redis_roles

  name         = "${local.prefix}-${each.key}"
  image        = docker_image.redis.image_id
  command      = [each.key]
  network_mode = "host"
  env          = [for k, v in local.redis_env : "${k}=${v}"]
  restart      = "unless-stopped"
  stop_timeout = 30
  log_driver   = "json-file"
  log_opts     = local.log_opts

  volumes {
    volume_name    = docker_volume.data[each.key].name
    container_path = each.value.state
  }

  upload {
    file    = "/etc/sluice/${each.value.conf}"
    content = file("${path.module}/../../../redis/${each.value.conf}")
  }

  healthcheck {
    test         = ["CMD", "/usr/local/bin/sluice-redis", "healthcheck"]
    interval     = "3s"
    timeout      = "5s"
    retries      = 3
    start_period = "60s"
  }

  wait         = true
  wait_timeout = 180

  lifecycle {
    precondition {
      condition     = var.redis_min_replicas_max_lag * 1000 < var.sentinel_down_after_ms
      error_message = "The redis_min_replicas_max_lag (seconds) must stay below sentinel_down_after_ms."
    }
  }
}

resource "docker_container" "ingest" {
  count = var.ingest_replicas

  name         = "${local.prefix}-ingest-${count.index + 1}"
  image        = docker_image.ingest.image_id
  network_mode = "host"
  env = [for k, v in merge(local.ingest_env, {
    INGEST_LISTEN_ADDR = ":${local.ingest_ports[count.index].ack}"
    INGEST_HTTP_ADDR   = ":${local.ingest_ports[count.index].http}"
    INGEST_NOACK_ADDR  = ":${local.ingest_ports[count.index].noack}"
    INGEST_ADMIN_ADDR  = ":${local.ingest_ports[count.index].admin}"
  }) : "${k}=${v}"]
  restart      = "unless-stopped"
  stop_timeout = 40
  log_driver   = "json-file"
  log_opts     = local.log_opts

  healthcheck {
    test         = ["CMD", "/ingest", "healthcheck"]
    interval     = "3s"
    timeout      = "5s"
    retries      = 3
    start_period = "20s"
  }

  wait         = true
  wait_timeout = 120

  depends_on = [docker_container.redis]
}

# ---- HAProxy (domains a and b), with keepalived holding the virtual IP when vip is set:
# NET_ADMIN to add the address, NET_RAW for VRRP's raw socket; nothing without a vip.
resource "docker_container" "haproxy" {
  count = var.haproxy ? 1 : 0

  name         = "${local.prefix}-haproxy"
  image        = docker_image.haproxy[0].image_id
  network_mode = "host"
  env          = [for k, v in local.haproxy_env : "${k}=${v}"]
  restart      = "unless-stopped"
  stop_timeout = 35
  log_driver   = "json-file"
  log_opts     = local.log_opts

  dynamic "capabilities" {
    for_each = var.vip == "" ? [] : [var.vip]
    content {
      add = ["NET_ADMIN", "NET_RAW"]
    }
  }

  upload {
    file = "/etc/haproxy/haproxy.cfg"
    content = templatefile("${path.module}/../../../haproxy/haproxy-multihost.cfg.tftpl", {
      servers     = local.ingest_servers
      ingest_port = var.ingest_port
      http_port   = var.http_port
      noack_port  = var.noack_port
      stats_port  = var.stats_port
    })
  }

  healthcheck {
    test         = ["CMD", "/usr/local/bin/sluice-haproxy", "healthcheck"]
    interval     = "3s"
    timeout      = "5s"
    retries      = 3
    start_period = "10s"
  }

  wait         = true
  wait_timeout = 60

  depends_on = [docker_container.ingest]
}
