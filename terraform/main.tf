# The sluice topology on one Docker host, container for container the same as
# compose/compose.yaml (module_test.go checks that they agree). Config files are
# the repository's own, uploaded into the containers before they start, so the
# Docker host may be remote: nothing is bind-mounted from the machine running
# Terraform.

locals {
  # Locally built images (make images); never pulled from a registry.
  images = {
    ingest  = "sluice/ingest:${var.image_tag}"
    redis   = "sluice/redis:${var.image_tag}"
    haproxy = "sluice/haproxy:${var.image_tag}"
    backup  = "sluice/backup:${var.image_tag}"
  }

  redis_nodes = ["redis-1", "redis-2", "redis-3"]
  # Each node has its own port (compose.yaml explains why): Sentinel keeps the address it
  # resolved for a name while its link is up, and nodes restarted together may swap addresses.
  redis_ports    = { "redis-1" = 6379, "redis-2" = 6380, "redis-3" = 6381 }
  sentinel_nodes = ["sentinel-1", "sentinel-2", "sentinel-3"]
  sentinel_addrs = join(",", [for s in local.sentinel_nodes : "${s}:26379"])

  # Same bounded json-file logs as compose.yaml's x-logging.
  log_opts = {
    max-size = "10m"
    max-file = "3"
  }

  # Environment shared by the Redis nodes and Sentinels (compose.yaml's x-redis-env);
  # each container adds REDIS_ANNOUNCE_HOST, the name it is reached by.
  # One ACL user per client (redis/redis.conf). Their passwords derive from redis_password
  # (one-way: no client can compute another's, nor admin's) so that one secret configures
  # the stack; redis_password itself is the admin user's.
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
    REDIS_INITIAL_MASTER         = "redis-1:6379"
    SENTINEL_MASTER_NAME         = "sluice"
    SENTINEL_DOWN_AFTER_MS       = var.sentinel_down_after_ms
    SENTINEL_FAILOVER_TIMEOUT_MS = var.sentinel_failover_timeout_ms
    REDIS_MIN_REPLICAS_MAX_LAG   = var.redis_min_replicas_max_lag
    REDIS_MAXMEMORY              = "${var.redis_maxmemory_mb}mb"
  }

  ingest_env = {
    INGEST_SENTINEL_ADDRS  = local.sentinel_addrs
    INGEST_SENTINEL_MASTER = "sluice"
    INGEST_REDIS_USERNAME  = "ingest"
    INGEST_REDIS_PASSWORD  = local.user_passwords["ingest"]
    # The Sentinels' own password (requirepass), not a Redis user's.
    INGEST_SENTINEL_PASSWORD = local.user_passwords["sentinels"]
    INGEST_REDIS_KEY         = "data_queue"
    INGEST_MIN_REPLICAS      = var.ingest_min_replicas
    INGEST_MAX_QUEUE_LEN     = var.ingest_max_queue_len
    # HAProxy sends PROXY v2 (send-proxy-v2).
    INGEST_PROXY_PROTOCOL = "true"
    # Longer than HAProxy's fall x inter, so a draining container leaves rotation first.
    INGEST_DRAIN_DELAY = "3s"
  }

  haproxy_env = {
    HAPROXY_STATS_USER     = var.haproxy_stats_user
    HAPROXY_STATS_PASSWORD = var.haproxy_stats_password
  }

  backup_env = {
    BACKUP_SENTINEL_ADDRS  = local.sentinel_addrs
    BACKUP_SENTINEL_MASTER = "sluice"
    BACKUP_REDIS_USERNAME  = "backup"
    BACKUP_REDIS_PASSWORD  = local.user_passwords["backup"]
    # The Sentinels' own password (requirepass), not a Redis user's.
    BACKUP_SENTINEL_PASSWORD = local.user_passwords["sentinels"]
    BACKUP_DIR               = "/backups"
    BACKUP_INTERVAL          = var.backup_interval
  }
}

resource "docker_network" "sluice" {
  name   = var.project_name
  driver = "bridge"
}

# keep_locally: destroying the stack must not delete images that cannot be
# pulled back.
resource "docker_image" "ingest" {
  name         = local.images.ingest
  keep_locally = true
}

resource "docker_image" "redis" {
  name         = local.images.redis
  keep_locally = true
}

resource "docker_image" "haproxy" {
  name         = local.images.haproxy
  keep_locally = true
}

resource "docker_image" "backup" {
  name         = local.images.backup
  keep_locally = true
}

# ---- Volumes: one per Redis node and Sentinel (AOF, Sentinel state), one for backups.
resource "docker_volume" "data" {
  for_each = toset(concat(local.redis_nodes, local.sentinel_nodes))
  name     = "${var.project_name}-${each.key}-data"
}

resource "docker_volume" "backups" {
  name = "${var.project_name}-backups"
}

# ---- Redis nodes: redis-1 is the master on first boot, afterwards whoever Sentinel names
# (redis/entrypoint.sh asks the Sentinels first). No dependency on the Sentinels: the
# nodes and Sentinels start together and wait for each other, as in Compose.
resource "docker_container" "redis" {
  for_each = toset(local.redis_nodes)

  name     = "${var.project_name}-${each.key}"
  image    = docker_image.redis.image_id
  command  = ["redis"]
  hostname = each.key
  # Twice maxmemory: room for the fork of an AOF rewrite or a full sync.
  memory  = var.redis_memory_limit_mb
  env     = [for k, v in merge(local.redis_env, { REDIS_ANNOUNCE_HOST = each.key, REDIS_PORT = local.redis_ports[each.key] }) : "${k}=${v}"]
  restart = "unless-stopped"
  # redis-server exits on SIGTERM after a final AOF fsync; give it time.
  stop_timeout = 30
  log_driver   = "json-file"
  log_opts     = local.log_opts

  networks_advanced {
    name = docker_network.sluice.name
    # The service name: other containers and Sentinel's hostname announcements use it.
    aliases = [each.key]
  }

  volumes {
    volume_name    = docker_volume.data[each.key].name
    container_path = "/data"
  }

  # The repository's redis.conf, over the copy baked into the image.
  upload {
    file    = "/etc/sluice/redis.conf"
    content = file("${path.module}/../redis/redis.conf")
  }

  healthcheck {
    test         = ["CMD", "/usr/local/bin/sluice-redis", "healthcheck"]
    interval     = "3s"
    timeout      = "5s"
    retries      = 3
    start_period = "60s"
  }

  # Like depends_on condition: service_healthy, for the containers that depend on this one.
  wait         = true
  wait_timeout = 180

  lifecycle {
    precondition {
      condition     = var.redis_min_replicas_max_lag * 1000 < var.sentinel_down_after_ms
      error_message = "The redis_min_replicas_max_lag (seconds) must stay below sentinel_down_after_ms, or a cut-off master keeps accepting writes that a failover then discards."
    }
  }
}

# ---- Sentinels (quorum 2), watching master "sluice".
resource "docker_container" "sentinel" {
  for_each = toset(local.sentinel_nodes)

  name         = "${var.project_name}-${each.key}"
  image        = docker_image.redis.image_id
  command      = ["sentinel"]
  hostname     = each.key
  env          = [for k, v in merge(local.redis_env, { REDIS_ANNOUNCE_HOST = each.key }) : "${k}=${v}"]
  restart      = "unless-stopped"
  stop_timeout = 30
  log_driver   = "json-file"
  log_opts     = local.log_opts

  networks_advanced {
    name    = docker_network.sluice.name
    aliases = [each.key]
  }

  # Sentinel's rewritten config (current master, epoch) survives a redeploy.
  volumes {
    volume_name    = docker_volume.data[each.key].name
    container_path = "/var/lib/sentinel"
  }

  upload {
    file    = "/etc/sluice/sentinel.conf"
    content = file("${path.module}/../redis/sentinel.conf")
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
}

# ---- Ingest x var.ingest_replicas. Every container carries the alias "ingest", which
# HAProxy's server-template resolves through Docker's DNS: scaling needs no config edit
# (up to the template's slot count in haproxy.cfg).
resource "docker_container" "ingest" {
  count = var.ingest_replicas

  name    = "${var.project_name}-ingest-${count.index + 1}"
  image   = docker_image.ingest.image_id
  memory  = var.ingest_memory_limit_mb
  env     = [for k, v in local.ingest_env : "${k}=${v}"]
  restart = "unless-stopped"
  # INGEST_SHUTDOWN_TIMEOUT (30 s) bounds the drain; SIGKILL only after it.
  stop_timeout = 40
  log_driver   = "json-file"
  log_opts     = local.log_opts

  networks_advanced {
    name    = docker_network.sluice.name
    aliases = ["ingest"]
  }

  healthcheck {
    # Scratch image: the binary checks its own /ready.
    test         = ["CMD", "/ingest", "healthcheck"]
    interval     = "3s"
    timeout      = "5s"
    retries      = 3
    start_period = "20s"
  }

  wait         = true
  wait_timeout = 120

  depends_on = [docker_container.redis, docker_container.sentinel]
}

# ---- HAProxy: the only container with published ports.
resource "docker_container" "haproxy" {
  name         = "${var.project_name}-haproxy"
  image        = docker_image.haproxy.image_id
  env          = [for k, v in local.haproxy_env : "${k}=${v}"]
  restart      = "unless-stopped"
  stop_timeout = 35
  log_driver   = "json-file"
  log_opts     = local.log_opts

  networks_advanced {
    name    = docker_network.sluice.name
    aliases = ["haproxy"]
  }

  # Client data: TCP with acks, HTTP, TCP without acks (PROXY v2 or X-Forwarded-For towards ingest).
  ports {
    internal = 9501
    external = var.ingest_port
    ip       = var.bind_address
  }

  ports {
    internal = 9502
    external = var.http_port
    ip       = var.bind_address
  }

  ports {
    internal = 9503
    external = var.noack_port
    ip       = var.bind_address
  }

  # Stats page and Prometheus exporter, behind basic auth.
  ports {
    internal = 8404
    external = var.stats_port
    ip       = var.bind_address
  }

  upload {
    file    = "/etc/haproxy/haproxy.cfg"
    content = file("${path.module}/../haproxy/haproxy.cfg")
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

# ---- Backup: periodic RDB snapshots from a replica found through Sentinel.
resource "docker_container" "backup" {
  name       = "${var.project_name}-backup"
  image      = docker_image.backup.image_id
  env        = [for k, v in local.backup_env : "${k}=${v}"]
  restart    = "unless-stopped"
  log_driver = "json-file"
  log_opts   = local.log_opts

  networks_advanced {
    name    = docker_network.sluice.name
    aliases = ["backup"]
  }

  volumes {
    volume_name    = docker_volume.backups.name
    container_path = "/backups"
  }

  healthcheck {
    test         = ["CMD", "/backup", "healthcheck"]
    interval     = "3s"
    timeout      = "5s"
    retries      = 3
    start_period = "20s"
  }

  wait         = true
  wait_timeout = 60

  depends_on = [docker_container.sentinel]
}
