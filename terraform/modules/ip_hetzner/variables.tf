################################################################################
# Common IP module contract (shared by all ip_* modules)
################################################################################

variable "ips" {
  description = <<-EOT
    Sending IP addresses, keyed by a stable IP id chosen by the caller (the id becomes part of the Terraform state address, so changing it recreates the IP).
    `pool` is the IP pool the address belongs to; `host` is the name of the host (server) that uses it; `ptr` is the reverse DNS name, a fully qualified host name without trailing dot (for example "mta1.example.com").
    `address` is the IP address when it already exists (static or existing addresses); leave it null to have this module allocate an IPv4 address, where the provider supports that.
  EOT
  type = map(object({
    pool    = string
    host    = string
    ptr     = string
    address = optional(string)
  }))
  nullable = false

  validation {
    condition     = alltrue([for ip in values(var.ips) : can(regex("^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\\.)+[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?$", ip.ptr))])
    error_message = "Each ptr must be a fully qualified host name without a trailing dot, such as \"mta1.example.com\"."
  }

  validation {
    condition     = alltrue([for ip in values(var.ips) : ip.address == null || can(cidrhost("${coalesce(ip.address, "0.0.0.0")}/${strcontains(coalesce(ip.address, "0.0.0.0"), ":") ? 128 : 32}", 0))])
    error_message = "Each address must be null or a single IPv4 or IPv6 address without a prefix length, such as \"203.0.113.10\"."
  }

  validation {
    condition     = alltrue([for ip in values(var.ips) : length(ip.pool) > 0 && length(ip.host) > 0])
    error_message = "Each IP needs a non-empty pool and host."
  }
}

variable "forward_records" {
  description = "Forward DNS records that must exist before reverse DNS is set, as a map of any id to FQDN: normally the `fqdns` output of the DNS module that writes the A records for these addresses. It only orders operations (some providers refuse or retry a PTR whose name does not resolve to the address). Do not use a module-level `depends_on` instead: the A records need the addresses from this module, so that would be a cycle."
  type        = map(string)
  default     = {}
  nullable    = false
}

################################################################################
# Hetzner Cloud
################################################################################

variable "servers" {
  description = <<-EOT
    Servers this module creates, keyed by host name (the `host` of `ips`). The first IP (by IP id) with a null `address` on such a host becomes its primary IPv4 (`hcloud_primary_ip`, kept when the server is deleted); its other IPs become floating IPs.
    `server_type` (for example "cx22"), `location` (for example "fsn1"), `image` (for example "debian-12") and `ssh_keys` (names or ids of SSH keys already in the project) are passed to `hcloud_server`; `user_data` is optional cloud-init data; `ipv6_enabled` (default true) gives the server its automatic IPv6 network.
  EOT
  type = map(object({
    server_type  = string
    location     = string
    image        = string
    ssh_keys     = optional(list(string), [])
    user_data    = optional(string)
    ipv6_enabled = optional(bool, true)
  }))
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for name in keys(var.servers) : can(regex("^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", name)) && length(name) <= 63])
    error_message = "Each server key must be a valid host name of at most 63 characters (letters, digits, dots and hyphens)."
  }

  validation {
    condition     = alltrue([for s in values(var.servers) : can(regex("^[a-z]{3}[0-9]*$", s.location))])
    error_message = "Each server location must be a Hetzner location name, such as fsn1, nbg1, hel1, ash, hil or sin."
  }
}

variable "existing_servers" {
  description = "Servers that already exist and are not managed here, keyed by host name: their Hetzner server `id` and `location`. Their IPs with a null `address` become floating IPs assigned to them; an IP with an `address` on such a host is taken to be the server's own primary IP, and only its reverse DNS is managed."
  type = map(object({
    id       = string
    location = string
  }))
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for s in values(var.existing_servers) : can(regex("^[0-9]+$", s.id))])
    error_message = "Each existing server id must be a Hetzner server id (digits only)."
  }

  validation {
    condition     = alltrue([for s in values(var.existing_servers) : can(regex("^[a-z]{3}[0-9]*$", s.location))])
    error_message = "Each existing server location must be a Hetzner location name, such as fsn1, nbg1, hel1, ash, hil or sin."
  }
}

variable "name_prefix" {
  description = "Prefix of the names of the primary and floating IPs this module creates; the IP id follows it."
  type        = string
  default     = "mailinfra-"
  nullable    = false
}

variable "labels" {
  description = "Labels added to every server, primary IP and floating IP this module creates. The module adds `mailinfra-pool` to IPs."
  type        = map(string)
  default     = {}
  nullable    = false
}
