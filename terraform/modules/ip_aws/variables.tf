################################################################################
# Common IP module contract (shared by all ip_* modules)
################################################################################

variable "ips" {
  description = <<-EOT
    Sending IP addresses, keyed by a stable IP id chosen by the caller (the id becomes part of the Terraform state address, so changing it recreates the IP).
    `pool` is the IP pool the address belongs to; `host` is the name of the host (server) that uses it; `ptr` is the reverse DNS name, a fully qualified host name without trailing dot (for example "mta1.example.com").
    `address` is the IP address when it already exists (static or existing addresses); leave it null to have this module allocate an IPv4 address, where the provider supports that (ip_aws allocates an Elastic IP; a given address must be an Elastic IP of the account).
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
# AWS (Elastic IPs)
################################################################################

variable "instance_ids" {
  description = "EC2 instance id of each host that Elastic IPs are associated with, keyed by host name. A host listed here or in `network_interface_ids` gets its IPs associated; a host in neither gets unassociated Elastic IPs."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for id in values(var.instance_ids) : can(regex("^i-[0-9a-f]{8,17}$", id))])
    error_message = "Each instance id must be an EC2 instance id, such as \"i-0123456789abcdef0\"."
  }
}

variable "network_interface_ids" {
  description = "Elastic network interface id of each host that Elastic IPs are associated with, keyed by host name. Use it instead of `instance_ids` for a host with several sending IPs, together with `private_ip_addresses`."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for id in values(var.network_interface_ids) : can(regex("^eni-[0-9a-f]{8,17}$", id))])
    error_message = "Each network interface id must be an ENI id, such as \"eni-0123456789abcdef0\"."
  }
}

variable "private_ip_addresses" {
  description = "Private IPv4 address that each IP's Elastic IP is associated with, keyed by IP id. Needed when a host has more than one associated IP: each Elastic IP must go to a different private address of the interface. IPs not listed use the primary private address."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for a in values(var.private_ip_addresses) : can(cidrhost("${a}/32", 0))])
    error_message = "Each private IP address must be a single IPv4 address, such as \"10.0.1.20\"."
  }
}

variable "tags" {
  description = "Tags added to every Elastic IP this module allocates. The module adds `Name` (`name_prefix` and the IP id) and `mailinfra:pool`."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "name_prefix" {
  description = "Prefix of the `Name` tag of the Elastic IPs this module allocates; the IP id follows it."
  type        = string
  default     = "mailinfra-"
  nullable    = false
}
