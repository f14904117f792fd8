"""The schema checker itself: it must catch wrong resources, from HCL and from .tf.json."""

from __future__ import annotations

import io
import textwrap

import hcl2
from schema_check import check_resource, hcl_blocks

GOOD_CLOUDFLARE = {
    'zone_id': '0123456789abcdef0123456789abcdef',
    'name': 'example.com',
    'type': 'MX',
    'ttl': 1,
    'content': 'mx.example.com',
    'priority': 10,
}


def parse_resources(hcl: str):
    return hcl_blocks(hcl2.load(io.StringIO(textwrap.dedent(hcl))))


def test_valid_tf_json_body_passes():
    assert check_resource('cloudflare_dns_record', GOOD_CLOUDFLARE) == []


def test_unknown_attribute_is_caught():
    # Cloudflare v4 spelled the record data "value"; v5 calls it "content".
    body = {**GOOD_CLOUDFLARE, 'value': 'mx.example.com'}
    assert check_resource('cloudflare_dns_record', body) == [
        'cloudflare_dns_record: unknown attribute or block "value"'
    ]


def test_missing_required_attribute_is_caught():
    body = {k: v for k, v in GOOD_CLOUDFLARE.items() if k != 'ttl'}
    assert check_resource('cloudflare_dns_record', body) == [
        'cloudflare_dns_record: required attribute "ttl" is missing'
    ]


def test_computed_only_attribute_cannot_be_set():
    body = {'domain': 'vpc', 'ptr_record': 'mta1.example.com'}
    assert check_resource('aws_eip', body) == ['aws_eip: "ptr_record" is computed by the provider and cannot be set']


def test_meta_arguments_are_ignored():
    body = {**GOOD_CLOUDFLARE, 'for_each': '${var.x}', 'depends_on': [], 'lifecycle': [{}], 'provider': 'x'}
    assert check_resource('cloudflare_dns_record', body) == []


def test_unknown_resource_type_is_reported():
    [problem] = check_resource('cloudflare_record', {'zone_id': 'x'})
    assert problem.startswith('no schema for resource type "cloudflare_record"')


def test_wrong_resource_from_hcl_is_caught():
    [(rtype, name, body)] = parse_resources(
        """
        resource "hcloud_rdns" "wrong" {
          for_each   = var.ips
          ip_address = each.value.address
          ptr        = each.value.ptr
        }
        """
    )
    assert (rtype, name) == ('hcloud_rdns', 'wrong')
    assert check_resource(rtype, body) == [
        'hcloud_rdns: unknown attribute or block "ptr"',
        'hcloud_rdns: required attribute "dns_ptr" is missing',
    ]


def test_nested_block_contents_are_checked():
    [(rtype, _name, body)] = parse_resources(
        """
        resource "hcloud_server" "s" {
          name        = "mta1"
          server_type = "cx22"
          public_net {
            ipv4_enabled = true
            ipv4_address = "203.0.113.10"
          }
        }
        """
    )
    assert check_resource(rtype, body) == ['hcloud_server.public_net[0]: unknown attribute or block "ipv4_address"']


def test_dynamic_block_contents_are_checked():
    [(rtype, _name, body)] = parse_resources(
        """
        resource "dns_mx_record_set" "mx" {
          zone = "example.com."
          dynamic "mx" {
            for_each = var.values
            content {
              preference = 10
            }
          }
        }
        """
    )
    assert check_resource(rtype, body) == ['dns_mx_record_set.dynamic.mx: required attribute "exchange" is missing']


def test_dynamic_block_in_tf_json_shape():
    body = {
        'zone': 'example.com.',
        'dynamic': {'mx': {'for_each': '${var.values}', 'content': {'preference': 10, 'exchange': 'mx.'}}},
    }
    assert check_resource('dns_mx_record_set', body) == []
    body['dynamic']['mx']['content']['weight'] = 1
    assert check_resource('dns_mx_record_set', body) == [
        'dns_mx_record_set.dynamic.mx: unknown attribute or block "weight"'
    ]


def test_data_source_schema():
    assert check_resource('aws_eip', {'public_ip': '203.0.113.10'}, kind='data') == []
    assert check_resource('aws_eip', {'allocation_id': 'x'}, kind='data') == [
        'aws_eip: unknown attribute or block "allocation_id"'
    ]
