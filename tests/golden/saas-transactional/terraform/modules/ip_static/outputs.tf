output "addresses" {
  description = "IP address of each IP, keyed by IP id."
  value       = local.addresses
}

output "addresses_by_pool" {
  description = "IP addresses of each pool, keyed by pool name; each list is sorted as strings."
  value       = { for pool in local.pools : pool => sort([for id, ip in var.ips : local.addresses[id] if ip.pool == pool]) }
}

output "ptr_records" {
  description = "Reverse DNS name wanted for each address, keyed by address. Nothing sets it: see `ptr_requests`."
  value       = { for ip in values(var.ips) : ip.address => ip.ptr }
}

output "ptr_requests" {
  description = "One line \"ADDRESS -> PTR NAME\" per address, sorted, to send to the provider that owns the addresses."
  value       = sort([for ip in values(var.ips) : "${ip.address} -> ${ip.ptr}"])
}
