################################################################################
# Which IP becomes what
################################################################################

locals {
  allocated = { for id, ip in var.ips : id => ip if ip.address == null }
  existing  = { for id, ip in var.ips : id => ip if ip.address != null }

  # The first allocated IP (by IP id) of each server created here is its primary IPv4.
  primary_by_host = {
    for host in keys(var.servers) : host => sort([for id, ip in local.allocated : id if ip.host == host])[0]
    if anytrue([for ip in values(local.allocated) : ip.host == host])
  }
  primary  = { for host, id in local.primary_by_host : id => var.ips[id] }
  floating = { for id, ip in local.allocated : id => ip if !contains(values(local.primary_by_host), id) }

  server_locations = merge(
    { for host, s in var.existing_servers : host => s.location },
    { for host, s in var.servers : host => s.location },
  )
  server_ids = merge(
    { for host, s in var.existing_servers : host => s.id },
    { for host, s in hcloud_server.this : host => s.id },
  )
}

locals {
  pools = sort(distinct([for ip in values(var.ips) : ip.pool]))
}

# Carries the forward records into the graph, so that reverse DNS waits for them.
resource "terraform_data" "forward_records" {
  input = var.forward_records
}

################################################################################
# Primary IPs and servers
################################################################################

resource "hcloud_primary_ip" "this" {
  for_each = local.primary

  name          = "${var.name_prefix}${each.key}"
  type          = "ipv4"
  location      = var.servers[each.value.host].location
  assignee_type = "server"
  # Keep the address when the server is deleted; otherwise the state breaks.
  auto_delete = false
  labels      = merge(var.labels, { "mailinfra-pool" = each.value.pool })
}

resource "hcloud_server" "this" {
  for_each = var.servers

  name        = each.key
  server_type = each.value.server_type
  image       = each.value.image
  location    = each.value.location
  ssh_keys    = each.value.ssh_keys
  user_data   = each.value.user_data
  labels      = var.labels

  public_net {
    ipv4_enabled = true
    ipv4         = contains(keys(local.primary_by_host), each.key) ? hcloud_primary_ip.this[local.primary_by_host[each.key]].id : null
    ipv6_enabled = each.value.ipv6_enabled
  }

  lifecycle {
    precondition {
      condition     = !contains(keys(var.existing_servers), each.key)
      error_message = "Host \"${each.key}\" is in both servers and existing_servers; list it in one of them."
    }
  }
}

################################################################################
# Floating IPs (additional addresses)
################################################################################

resource "hcloud_floating_ip" "this" {
  for_each = local.floating

  name          = "${var.name_prefix}${each.key}"
  type          = "ipv4"
  home_location = lookup(local.server_locations, each.value.host, null)
  labels        = merge(var.labels, { "mailinfra-pool" = each.value.pool })

  lifecycle {
    precondition {
      condition     = contains(keys(local.server_locations), each.value.host)
      error_message = "IP \"${each.key}\" is on host \"${each.value.host}\", which is in neither servers nor existing_servers."
    }
  }
}

resource "hcloud_floating_ip_assignment" "this" {
  for_each = local.floating

  floating_ip_id = hcloud_floating_ip.this[each.key].id
  server_id      = local.server_ids[each.value.host]
}

################################################################################
# Reverse DNS
################################################################################

locals {
  addresses = merge(
    { for id, ip in hcloud_primary_ip.this : id => ip.ip_address },
    { for id, ip in hcloud_floating_ip.this : id => ip.ip_address },
    { for id, ip in local.existing : id => ip.address },
  )
}

resource "hcloud_rdns" "this" {
  for_each = var.ips

  ip_address = local.addresses[each.key]
  dns_ptr    = each.value.ptr

  primary_ip_id  = contains(keys(local.primary), each.key) ? hcloud_primary_ip.this[each.key].id : null
  floating_ip_id = contains(keys(local.floating), each.key) ? hcloud_floating_ip.this[each.key].id : null
  server_id      = contains(keys(local.existing), each.key) ? try(var.existing_servers[each.value.host].id, null) : null

  depends_on = [terraform_data.forward_records]

  lifecycle {
    precondition {
      condition     = each.value.address == null || contains(keys(var.existing_servers), each.value.host)
      error_message = "IP \"${each.key}\" has an address, so it must be the primary IP of a host in existing_servers; \"${each.value.host}\" is not. Import addresses that belong elsewhere before managing them here."
    }
  }
}
