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
  value       = { for id, r in aws_eip_domain_name.this : local.addresses[id] => r.domain_name }
}

output "allocation_ids" {
  description = "Elastic IP allocation id of each IP, keyed by IP id."
  value       = local.allocation_ids
}
