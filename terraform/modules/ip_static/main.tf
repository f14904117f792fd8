################################################################################
# Static addresses: nothing is created. The provider's reverse DNS is requested by
# hand (or by ticket) from `ptr_requests`.
################################################################################

locals {
  pools     = sort(distinct([for ip in values(var.ips) : ip.pool]))
  addresses = { for id, ip in var.ips : id => ip.address }
}
