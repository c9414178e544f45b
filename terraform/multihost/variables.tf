variable "docker_hosts" {
  type        = object({ a = string, b = string, c = string })
  description = "Docker daemon of each failure domain: unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host."

  validation {
    condition     = alltrue([for h in [var.docker_hosts.a, var.docker_hosts.b, var.docker_hosts.c] : can(regex("^(unix|tcp|ssh)://.+", h))])
    error_message = "Each docker_hosts entry must be a unix://, tcp:// or ssh:// URL."
  }
}

variable "docker_ssh_opts" {
  type        = list(string)
  description = "Extra ssh options for ssh:// docker_hosts, e.g. [\"-o\", \"StrictHostKeyChecking=accept-new\"]."
  default     = []
}

variable "addresses" {
  type        = object({ a = string, b = string, c = string })
  description = "IPv4 address of each domain's host that the other hosts and the clients reach (Redis and Sentinel announce it; HAProxy's servers use it). Three distinct addresses: on one machine use the single-host root (terraform/)."

  validation {
    condition     = length(distinct([var.addresses.a, var.addresses.b, var.addresses.c])) == 3 && alltrue([for a in [var.addresses.a, var.addresses.b, var.addresses.c] : can(regex("^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$", a))])
    error_message = "The addresses must be three distinct IPv4 addresses."
  }
}

variable "project_name" {
  type        = string
  description = "Prefix of every container and volume name."
  default     = "sluice"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]*$", var.project_name))
    error_message = "The project_name must be lowercase letters, digits, '-' or '_'."
  }
}

variable "image_tag" {
  type        = string
  description = "Tag of the sluice/* images (make images), loaded on every host beforehand (docker save | docker -H ... load)."

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "The image_tag must be a Docker tag."
  }
}

variable "ingest_replicas" {
  type        = number
  description = "Ingest containers per domain (1 to 10)."
  default     = 2

  validation {
    condition     = var.ingest_replicas >= 1 && var.ingest_replicas <= 10 && floor(var.ingest_replicas) == var.ingest_replicas
    error_message = "The ingest_replicas must be a whole number from 1 to 10."
  }
}

variable "redis_port" {
  type        = number
  description = "Port of the Redis node on every host."
  default     = 6379

  validation {
    condition     = var.redis_port >= 1 && var.redis_port <= 65535 && floor(var.redis_port) == var.redis_port
    error_message = "The redis_port must be a whole number from 1 to 65535."
  }
}

variable "sentinel_port" {
  type        = number
  description = "Port of the Sentinel on every host."
  default     = 26379

  validation {
    condition     = var.sentinel_port >= 1 && var.sentinel_port <= 65535 && floor(var.sentinel_port) == var.sentinel_port
    error_message = "The sentinel_port must be a whole number from 1 to 65535."
  }
}

variable "ingest_port" {
  type        = number
  description = "HAProxy's TCP endpoint with acks (on a, b and the virtual IP)."
  default     = 9501

  validation {
    condition     = var.ingest_port >= 1 && var.ingest_port <= 65535 && floor(var.ingest_port) == var.ingest_port
    error_message = "The ingest_port must be a whole number from 1 to 65535."
  }
}

variable "vip" {
  type        = string
  description = "Virtual IPv4 address the two HAProxy hosts share (keepalived, VRRP over unicast); \"\" for none (then use a load balancer or DNS with both HAProxy addresses, see README)."
  default     = ""

  validation {
    condition     = var.vip == "" || can(regex("^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$", var.vip))
    error_message = "The vip must be \"\" or an IPv4 address."
  }
}

variable "vip_interface" {
  type        = string
  description = "Interface of hosts a and b that carries the virtual IP."
  default     = "eth0"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.@-]{1,15}$", var.vip_interface))
    error_message = "The vip_interface must be a network interface name."
  }
}

variable "redis_password" {
  type        = string
  description = "Password of the Redis admin user; the others derive from it. Pass it with TF_VAR_redis_password."
  sensitive   = true

  validation {
    condition     = length(var.redis_password) >= 16
    error_message = "The redis_password must be at least 16 characters."
  }
}

variable "haproxy_stats_password" {
  type        = string
  description = "Basic-auth password of HAProxy's stats page. Pass it with TF_VAR_haproxy_stats_password."
  sensitive   = true

  validation {
    condition     = length(var.haproxy_stats_password) >= 8
    error_message = "The haproxy_stats_password must be at least 8 characters."
  }
}

variable "sentinel_down_after_ms" {
  type        = number
  description = "Milliseconds without an answer before a Sentinel considers a node down."
  default     = 5000

  validation {
    condition     = var.sentinel_down_after_ms >= 1000 && floor(var.sentinel_down_after_ms) == var.sentinel_down_after_ms
    error_message = "The sentinel_down_after_ms must be a whole number of milliseconds, at least 1000."
  }
}
