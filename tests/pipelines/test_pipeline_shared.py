"""What every Route 53 pipeline refuses the same way, whatever the target."""
import pytest
from sigma.backends.elasticsearch import ESQLBackend
from sigma.backends.splunk import SplunkBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaTransformationError
from sigma.pipelines.route53 import pipelines

from sigma.backends.cloudwatch import backends as cloudwatch_backends

TARGETS = {
    "route53_elasticsearch": ESQLBackend,
    "route53_splunk": SplunkBackend,
    "route53_cloudwatch": cloudwatch_backends["cloudwatch"],
}

CORRELATION = """
title: base
name: base
status: test
logsource: {product: aws, service: route53resolver}
detection:
    sel:
        rcode: NXDOMAIN
    condition: sel
---
title: burst
status: test
correlation:
    type: %s
    rules: [base]
    group-by: [%s]
    timespan: 5m
    condition: %s
"""


@pytest.mark.parametrize("pipeline", TARGETS)
def test_unknown_group_by_field_is_rejected(pipeline):
    collection = SigmaCollection.from_yaml(CORRELATION % ("event_count", "src_addr", "{gt: 5}"))
    with pytest.raises(SigmaTransformationError, match="field 'src_addr' is not a field of Route 53 Resolver"):
        TARGETS[pipeline](pipelines[pipeline]()).convert(collection)


@pytest.mark.parametrize("pipeline", TARGETS)
def test_unknown_value_count_field_is_rejected(pipeline):
    collection = SigmaCollection.from_yaml(CORRELATION % ("value_count", "srcaddr", "{field: qname, gt: 5}"))
    with pytest.raises(SigmaTransformationError, match="field 'qname' is not a field"):
        TARGETS[pipeline](pipelines[pipeline]()).convert(collection)


@pytest.mark.parametrize("pipeline", TARGETS)
def test_known_correlation_fields_convert(pipeline):
    collection = SigmaCollection.from_yaml(CORRELATION % ("value_count", "srcaddr", "{field: query_name, gt: 5}"))
    assert TARGETS[pipeline](pipelines[pipeline]()).convert(collection)


def test_the_shared_module_holds_only_steps_more_than_one_pipeline_uses():
    """A step one pipeline needs lives in that pipeline's module (the others need not read it). The
    steps are the module's processing-item factories; its classes are what those build."""
    import ast
    from pathlib import Path

    import sigma.pipelines.route53.shared as shared

    folder = Path(shared.__file__).parent
    public = [n.name for n in ast.parse(Path(shared.__file__).read_text()).body
              if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    users = {name: sorted(p.stem for p in folder.glob("*.py") if p.stem != "shared"
                          and f"shared.{name}" in p.read_text()) for name in public}
    assert public and {name: found for name, found in users.items() if len(found) < 2} == {}
