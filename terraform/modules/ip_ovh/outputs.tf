output "addresses" {
  description = "IP address of each IP, keyed by IP id."
  value       = local.addresses
}

output "addresses_by_pool" {
  description = "IP addresses of each pool, keyed by pool name; each list is sorted as strings."
  value       = { for pool in local.pools : pool => sort([for id, ip in var.ips : local.addresses[id] if ip.pool == pool]) }
}

output "ptr_records" {
  description = "Reverse DNS name set for each address, keyed by address."
  value       = { for id, r in ovh_ip_reverse.this : r.ip_reverse => r.reverse }
}
