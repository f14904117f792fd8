locals {
  allocated = { for id, ip in var.ips : id => ip if ip.address == null }
}

locals {
  pools = sort(distinct([for ip in values(var.ips) : ip.pool]))
}

# Carries the forward records into the graph, so that reverse DNS waits for them.
resource "terraform_data" "forward_records" {
  input = var.forward_records
}

resource "linode_instance_ip" "this" {
  for_each = local.allocated

  linode_id         = lookup(var.instance_ids, each.value.host, null)
  public            = true
  apply_immediately = var.apply_immediately

  lifecycle {
    precondition {
      condition     = contains(keys(var.instance_ids), each.value.host)
      error_message = "IP \"${each.key}\" is on host \"${each.value.host}\", which has no entry in instance_ids."
    }
  }
}

locals {
  addresses = merge(
    { for id, ip in var.ips : id => ip.address if ip.address != null },
    { for id, ip in linode_instance_ip.this : id => ip.address },
  )
}

# Linode requires the PTR name to resolve to the address first: the forward records
# are ordered before this (forward_records) and the provider retries while they
# propagate (wait_for_available).
resource "linode_rdns" "this" {
  for_each = var.ips

  address            = local.addresses[each.key]
  rdns               = each.value.ptr
  wait_for_available = var.wait_for_available

  depends_on = [terraform_data.forward_records]
}
