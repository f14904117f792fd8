"""script/extract-tf-schemas: its parsers on small samples, and the committed data it wrote."""

from __future__ import annotations

import base64
import importlib.machinery
import importlib.util
import io
import json
import tarfile
import textwrap
from pathlib import Path

import pytest
from schema_check import SCHEMA_DIR, load_schemas
from tf_helpers import MODULES_DIR, REPO


def _load_script():
    path = REPO / 'script' / 'extract-tf-schemas'
    loader = importlib.machinery.SourceFileLoader('extract_tf_schemas', str(path))
    spec = importlib.util.spec_from_loader('extract_tf_schemas', loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


ets = _load_script()


class FakeGo:
    """Stands in for GoSource: helper calls resolve to a fixed literal."""

    def helper_literal(self, call: str) -> str:
        assert call == 'resourceutil.LabelsSchema()'
        return 'schema.MapAttribute{Optional: true, Computed: true}'


SDK_SAMPLE = textwrap.dedent(
    """
    func resourceThing() *schema.Resource {
        return &schema.Resource{
            Timeouts: &schema.ResourceTimeout{Create: schema.DefaultTimeout(5 * time.Minute)},
            Schema: map[string]*schema.Schema{
                "name": {Type: schema.TypeString, Required: true, Description: "a {brace} and a \\"quote\\""},
                "note": {Type: schema.TypeString, Optional: true, Computed: true}, // trailing: comment
                "addr": {Type: schema.TypeString, Computed: true},
                "rule": {
                    Type:     schema.TypeSet,
                    Optional: true,
                    Elem: &schema.Resource{
                        Schema: map[string]*schema.Schema{
                            "port": {Type: schema.TypeInt, Required: true},
                        },
                    },
                },
                "tags": {Type: schema.TypeList, Optional: true, Elem: &schema.Schema{Type: schema.TypeString}},
            },
        }
    }
    """
)

FRAMEWORK_SAMPLE = textwrap.dedent(
    """
    func (r *Resource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
        resp.Schema.Attributes = map[string]schema.Attribute{
            "id":     schema.Int64Attribute{Computed: true},
            "name":   schema.StringAttribute{Required: true, MarkdownDescription: `raw "string" }`},
            "labels": resourceutil.LabelsSchema(),
            "settings": schema.SingleNestedAttribute{
                Optional: true,
                Attributes: map[string]schema.Attribute{"on": schema.BoolAttribute{Optional: true}},
            },
        }
        resp.Schema.Blocks = map[string]schema.Block{
            "target": schema.ListNestedBlock{
                NestedObject: schema.NestedBlockObject{
                    Attributes: map[string]schema.Attribute{"host": schema.StringAttribute{Required: true}},
                },
            },
        }
    }
    """
)


def flags(required=False, optional=False, computed=False):
    return {'computed': computed, 'optional': optional, 'required': required}


def test_sdkv2_schema_literal():
    schema, notes = ets._sdk_resource(FakeGo(), SDK_SAMPLE, 'func resourceThing()')
    assert schema['attributes'] == {
        'addr': flags(computed=True),
        'id': flags(optional=True, computed=True),
        'name': flags(required=True),
        'note': flags(optional=True, computed=True),
        'tags': flags(optional=True),
    }
    assert schema['blocks']['rule'] == {
        'nesting': 'set',
        **flags(optional=True),
        'attributes': {'port': flags(required=True)},
        'blocks': {},
    }
    assert schema['blocks']['timeouts']['attributes'] == {'create': flags(optional=True)}
    assert notes


def test_framework_schema_literal():
    schema, _ = ets._fw_resource(FakeGo(), FRAMEWORK_SAMPLE, ') Schema(')
    assert schema['attributes'] == {
        'id': flags(computed=True),
        'labels': flags(optional=True, computed=True),
        'name': flags(required=True),
    }
    assert schema['blocks']['settings']['nesting'] == 'single'
    assert schema['blocks']['settings']['attributes'] == {'on': flags(optional=True)}
    assert schema['blocks']['target']['nesting'] == 'list'
    assert schema['blocks']['target']['attributes'] == {'host': flags(required=True)}


TS_SAMPLE = textwrap.dedent(
    """
    // https://registry.terraform.io/providers/acme/widget/1.2.3/docs/resources/thing
    export class ThingRuleOutputReference extends cdktf.ComplexObject {
      // port - computed: false, optional: false, required: true
      private _port?: number;
    }
    export class ThingRuleList extends cdktf.ComplexList {
    }
    export class Thing extends cdktf.TerraformResource {
      public static readonly tfResourceType = "widget_thing";
      terraformGeneratorMetadata: { providerName: 'widget', providerVersion: '1.2.3' }
      // id - computed: true, optional: false, required: false
      public get id() {
      // name - computed: false, optional: false, required: true
      private _name?: string;
      // rule - computed: false, optional: true, required: false
      private _rule = new ThingRuleList(this, "rule", true);
    }
    """
)


def test_cdktf_tarball(tmp_path):
    smap = {'version': 3, 'sources': ['index.ts'], 'sourcesContent': [TS_SAMPLE]}
    js = (
        'Thing.tfResourceType = "widget_thing";\n'
        'class Thing extends cdktf.TerraformResource {}\n'
        '//# sourceMappingURL=data:application/json;base64,' + base64.b64encode(json.dumps(smap).encode()).decode()
    )
    tarball = tmp_path / 'cdktf-provider-widget-9.9.9.tgz'
    with tarfile.open(tarball, 'w:gz') as tar:
        data = js.encode()
        info = tarfile.TarInfo('package/lib/thing/index.js')
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    result = ets.extract_cdktf(tarball, {('resource', 'widget_thing')})
    assert result['provider'] == {'name': 'widget', 'source': 'acme/widget', 'version': '1.2.3'}
    thing = result['resources']['widget_thing']
    assert thing['attributes'] == {'id': flags(computed=True), 'name': flags(required=True)}
    assert thing['blocks'] == {
        'rule': {'nesting': 'set', **flags(optional=True), 'attributes': {'port': flags(required=True)}, 'blocks': {}}
    }


def test_schema_data_covers_every_type_the_modules_use():
    schemas = load_schemas()
    missing = []
    for kind, rtype in sorted(ets.used_types(MODULES_DIR)):
        section = 'resources' if kind == 'resource' else 'data_sources'
        provider = ets.provider_of(rtype)
        if rtype not in schemas.get(provider, {}).get(section, {}):
            missing.append(f'{kind} {rtype}')
    assert missing == [], 'regenerate with script/extract-tf-schemas (see its header)'


@pytest.mark.parametrize('provider', sorted(ets.PROVIDERS))
def test_schema_file_matches_the_configured_origin(provider):
    doc = json.loads((SCHEMA_DIR / f'{provider}.json').read_text(encoding='utf-8'))
    origin = ets.PROVIDERS[provider]['origin']
    assert doc['origin']['kind'] == origin['kind']
    if origin['kind'] == 'cdktf':
        assert (doc['origin']['package'], doc['origin']['version']) == (origin['package'], origin['version'])
    else:
        assert doc['origin']['tag'] == origin['tag']
        assert doc['provider'] == {
            'name': origin['source'].split('/')[1],
            'source': origin['source'],
            'version': origin['tag'].removeprefix('v'),
        }


def test_schema_dir_is_the_scripts_default():
    assert Path(SCHEMA_DIR) == REPO / 'tests' / 'data' / 'tf_schemas'
