module "one" {
  source    = "../module-call/child"
  providers = { docker = docker.nope }
  port      = 1
}
