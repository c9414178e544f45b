resource "docker_container" "c" {
  dynamic "upload" {
    for_each = ["a"]
    file     = "/etc/a"
  }
}
