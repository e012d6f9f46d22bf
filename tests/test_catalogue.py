"""The field catalogue: valid against its JSON Schema, and internally consistent."""
import copy

import jsonschema
import pytest
import yaml

from r53sigma import catalogue


@pytest.fixture(scope="module")
def documents():
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(catalogue.catalogue_dir().glob("*.yml"))}


def test_every_catalogue_file_is_valid_against_the_schema(documents):
    validator = jsonschema.Draft202012Validator(catalogue.schema())
    assert set(documents) == {"resolver.yml", "public_zone.yml", "cloudtrail.yml"}
    for name, document in documents.items():
        assert not list(validator.iter_errors(document)), name


def test_schema_rejects_a_field_without_a_target_name(documents):
    broken = copy.deepcopy(documents["resolver.yml"])
    del broken["fields"]["query_name"]["targets"]["splunk"]
    assert list(jsonschema.Draft202012Validator(catalogue.schema()).iter_errors(broken))


def test_logsources_are_the_three_route53_sources():
    logsources = {ls.source: dict(ls.logsource) for ls in catalogue.log_sources()}
    assert logsources == {
        "resolver": {"product": "aws", "service": "route53resolver"},
        "public_zone": {"product": "aws", "service": "route53"},
        "cloudtrail": {"product": "aws", "service": "cloudtrail"},
    }


def test_generic_dns_names_resolve_to_resolver_fields():
    log_source, generic = catalogue.for_logsource("dns", None, None)
    assert (log_source.source, generic) == ("resolver", True)
    assert log_source.field_for("query", generic_dns=True).name == "query_name"
    assert log_source.field_for("answer", generic_dns=True).name == "answers.Rdata"
    assert log_source.field_for("record_type", generic_dns=True).name == "query_type"
    assert log_source.field_for("query") is None  # only category: dns rules use the generic names


def test_target_names_are_unique_within_a_log_source():
    for log_source in catalogue.log_sources():
        for target in ("elasticsearch", "splunk", "cloudwatch"):
            names = [f.target(target).name for f in log_source.fields.values()]
            assert len(names) == len(set(names)), (log_source.source, target)


def test_public_zone_columns_are_catalogued_fields_in_log_order():
    public = catalogue.load()["public_zone"]
    assert public.columns[:3] == ("version", "queryTimestamp", "hostZoneId")
    assert set(public.columns) == set(public.fields)


def test_dns_roles_are_unique_and_present_in_both_dns_log_sources():
    for source in ("resolver", "public_zone"):
        log_source = catalogue.load()[source]
        roles = [f.role for f in log_source.fields.values() if f.role]
        assert len(roles) == len(set(roles)), source
        assert {"question_name", "question_type", "response_code", "source_ip"} <= set(roles), source
    assert catalogue.load()["resolver"].with_role("answer_data").name == "answers.Rdata"


def test_validation_is_remembered_by_content_and_an_edited_catalogue_is_validated_again(tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "catalogue"
    shutil.copytree(catalogue.catalogue_dir(), copy)
    monkeypatch.setenv("R53SIGMA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(catalogue, "catalogue_dir", lambda: copy)
    catalogue.load.cache_clear()
    try:
        assert "resolver" in catalogue.load()
        assert (tmp_path / "cache" / "catalogue-validated").is_file()
        catalogue.load.cache_clear()
        resolver = copy / "resolver.yml"
        resolver.write_text(resolver.read_text() + "\nnot_in_the_schema: 1\n")
        with pytest.raises(catalogue.CatalogueError, match="resolver.yml"):
            catalogue.load()
    finally:
        catalogue.load.cache_clear()


def test_the_documents_are_kept_with_the_validation_and_read_without_yaml(tmp_path, monkeypatch):
    """A catalogue validated before is read from the JSON kept with its mark (no PyYAML import, no YAML
    parsing: a warm scan's start), as the YAML gives it; an edited file is parsed again."""
    import shutil
    import sys

    copy = tmp_path / "catalogue"
    shutil.copytree(catalogue.catalogue_dir(), copy)
    monkeypatch.setenv("R53SIGMA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(catalogue, "catalogue_dir", lambda: copy)
    catalogue.load.cache_clear()
    try:
        parsed = catalogue.load()
        catalogue.load.cache_clear()
        with monkeypatch.context() as no_yaml:
            no_yaml.setitem(sys.modules, "yaml", None)  # any `import yaml` fails
            assert catalogue.load() == parsed
            catalogue.load.cache_clear()
            resolver = copy / "resolver.yml"
            resolver.write_text(resolver.read_text().replace("title: Route 53 Resolver query logs", "title: Route 53 Resolver query logs (edited)"))
            with pytest.raises(ImportError):
                catalogue.load()
        catalogue.load.cache_clear()
        edited = catalogue.load()
        assert edited["resolver"].title != parsed["resolver"].title and "(edited)" in edited["resolver"].title
    finally:
        catalogue.load.cache_clear()
