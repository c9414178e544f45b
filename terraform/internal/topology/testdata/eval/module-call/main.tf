variable "port" {
  type    = number
  default = 8080
}

provider "docker" {
  alias = "a"
  host  = "ssh://root@10.0.0.1"
}

module "one" {
  source    = "./child"
  providers = { docker = docker.a }
  port      = var.port
  caps      = true
}

output "endpoint" {
  value = module.one.endpoint
}

output "rendered" {
  value = module.one.rendered
}
