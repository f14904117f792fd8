output "fqdns" {
  description = "Fully qualified name (without trailing dot) of each record written, keyed by the record id from `records`. Referencing it makes the caller wait until the records exist."
  value = {
    for id, names in {
      for key, record in cloudflare_dns_record.this : local.record_values[key].record_id => record.name...
    } : id => names[0]
  }
}

output "record_ids" {
  description = "Cloudflare record id of each value written, keyed by \"<record id>/<value hash>\" (the resource key)."
  value       = { for key, record in cloudflare_dns_record.this : key => record.id }
}
