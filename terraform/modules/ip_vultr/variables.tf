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
# Vultr
################################################################################

variable "region" {
  description = "Vultr region id in which reserved IPs are created (for example \"fra\" or \"ewr\"). Applies to IPs with a null `address`."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]{3}$", var.region))
    error_message = "The region must be a three-letter Vultr region id in lower case, such as \"fra\", \"ams\" or \"ewr\"."
  }
}

variable "instance_ids" {
  description = "Vultr instance id (a UUID) of each host, keyed by host name (the `host` of `ips`). Every host used in `ips` must be listed: reserved IPs are attached to it and its reverse DNS is set through it."
  type        = map(string)
  nullable    = false

  validation {
    condition     = alltrue([for id in values(var.instance_ids) : can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", id))])
    error_message = "Each instance id must be a Vultr instance UUID in lower case, such as \"cb676a46-66fd-4dfb-b839-443f2e6c0b60\"."
  }
}

variable "label_prefix" {
  description = "Prefix of the labels of the reserved IPs this module creates; the IP id follows it."
  type        = string
  default     = "mailinfra-"
  nullable    = false
}
