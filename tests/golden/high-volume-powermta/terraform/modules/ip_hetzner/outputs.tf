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
  value       = { for id, r in hcloud_rdns.this : r.ip_address => r.dns_ptr }
}

output "server_ids" {
  description = "Hetzner server id of each host, keyed by host name: the servers created here and the existing servers given."
  value       = local.server_ids
}

output "floating_ips" {
  description = "IP ids whose address is a floating IP. The address must also be configured on the server itself (Hetzner does not do that), which the Ansible side does."
  value       = sort(keys(local.floating))
}
