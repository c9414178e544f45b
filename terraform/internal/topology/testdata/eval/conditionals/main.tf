variable "on" {
  type    = bool
  default = false
}

resource "docker_image" "img" {
  count = var.on ? 1 : 0
  name  = "sluice/x:1"
}

resource "docker_container" "c" {
  count = var.on ? 2 : 0
  name  = "c-${count.index}"
  image = docker_image.img[0].image_id

  networks_advanced {
    name    = "net"
    aliases = ["svc"]
  }
}

output "url" {
  value = var.on ? "http://on/" : null
}

output "images" {
  value = length(docker_image.img)
}
