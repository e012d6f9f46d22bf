"""The models' shared mechanics: one entry point, one error base, one token cursor."""
from __future__ import annotations

import pytest

from r53sigma.targets import querymodel
from r53sigma.targets.cloudwatch import insights_model
from r53sigma.targets.elasticsearch import esql_model
from r53sigma.targets.splunk import spl_model

BROKEN = {insights_model: "filter (", esql_model: "FROM logs | WHERE (", spl_model: "search (a"}


@pytest.mark.parametrize("model", BROKEN, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_a_model_syntax_error_is_the_shared_error(model):
    with pytest.raises(querymodel.QuerySyntaxError):
        model.parse(BROKEN[model]).run([])
    assert issubclass(model.QuerySyntaxError, querymodel.QuerySyntaxError)


def test_insights_parse_then_run():
    rows = insights_model.parse("filter rcode = 'NXDOMAIN'").run(
        [insights_model.event('{"rcode": "NXDOMAIN"}'), insights_model.event('{"rcode": "NOERROR"}')])
    assert len(rows) == 1


def test_esql_parse_then_run():
    rows = esql_model.parse('FROM logs-* | WHERE dns.response_code == "NXDOMAIN"').run(
        [{"dns.response_code": ["NXDOMAIN"]}, {"dns.response_code": ["NOERROR"]}])
    assert len(rows) == 1


def test_spl_parse_then_run():
    rows = spl_model.parse('search reply_code="NXDOMAIN"').run([{"reply_code": "NXDOMAIN"}, {"reply_code": "NOERROR"}])
    assert len(rows) == 1


def test_the_cursor_reports_the_end_with_its_model_error():
    class Parser(querymodel.Cursor):
        error = KeyError
        end_message = "end"

    cursor = Parser([querymodel.Token("word", "a")])
    assert cursor.take().text == "a" and cursor.done()
    with pytest.raises(KeyError):
        cursor.take()
