"""devserver.vtl renders mapping templates as API Gateway's Velocity does (docs/api-gateway.md, APIGW-2 to APIGW-12).

Where a case states what AWS recorded, the fact's entry in docs/api-gateway.md names the
recording; tests/test_conformance_apigw.py replays those recordings whole."""
from __future__ import annotations

import json
from typing import Any, Mapping, Optional

import pytest

from devserver.vtl import BodyNotJson, Overrides, VtlError, render
from devserver.vtl_util import escape_javascript, url_decode, url_encode


def run(template: str, body: str = "", params: Optional[Mapping[str, Mapping[str, str]]] = None,
        context: Optional[Mapping[str, Any]] = None, stage_variables: Optional[Mapping[str, str]] = None,
        overrides: Optional[Overrides] = None) -> str:
    return render(template, body=body, params=params or {}, context=context or {}, stage_variables=stage_variables,
                  overrides=overrides)


def out(template: str, **kwargs: Any) -> str:
    return run(template, **kwargs)


# --- $util.escapeJavaScript: Commons Lang 2 rules (docs: APIGW-7) ----------------------------------

def test_escape_javascript_matches_the_spec_measurement_exactly():
    body = 'He said "hi" & it\'s C:\\temp\\x\nline2 café 😀 a/b'

    assert out("$util.escapeJavaScript($input.body)", body=body) == (
        'He said \\"hi\\" & it\\\'s C:\\\\temp\\\\x\\nline2 caf\\u00E9 \\uD83D\\uDE00 a\\/b'
    )


@pytest.mark.parametrize("raw, escaped", [
    ("'", "\\'"),
    ('"', '\\"'),
    ("\\", "\\\\"),
    ("/", "\\/"),
    ("\b\t\n\f\r", "\\b\\t\\n\\f\\r"),
    ("\x00\x01\x1f", "\\u0000\\u0001\\u001F"),
    ("\x7f", "\x7f"),                      # DEL is not > 0x7F: left as is, like Commons Lang
    ("é", "\\u00E9"),
    ("\u0100", "\\u0100"),
    ("\u2028\u2029", "\\u2028\\u2029"),
    ("😀", "\\uD83D\\uDE00"),              # astral: a UTF-16 surrogate pair, uppercase hex
    ("</script>", "<\\/script>"),
    ("plain ASCII 123", "plain ASCII 123"),
])
def test_escape_javascript_per_character(raw, escaped):
    assert escape_javascript(raw) == escaped


def test_escape_javascript_of_null_renders_nothing():
    assert out("[$util.escapeJavaScript($nothing)]") == "[]"


def test_without_the_replace_all_workaround_an_apostrophe_gives_invalid_json_as_on_aws():
    template = '{"request": "$util.escapeJavaScript($input.body)"}'

    rendered = out(template, body='{"a": "it\'s"}')

    assert "\\'" in rendered
    with pytest.raises(json.JSONDecodeError):
        json.loads(rendered)


def test_with_the_workaround_the_same_body_round_trips():
    template = '{"request": "$util.escapeJavaScript($input.body).replaceAll("\\\\\'", "\'")"}'
    body = '{"a": "it\'s", "b": "\\\\\'"}'

    assert json.loads(out(template, body=body))["request"] == body


# --- literals keep backslashes as Velocity does ---------------------------------------------------

@pytest.mark.parametrize("template, expected", [
    ('#set($s = "\\\\\'")$s', "\\\\'"),         # "\\'" stays two backslashes and a quote
    ("#set($s = 'a\\nb')$s", "a\\nb"),           # no \n decoding in single quotes either
    ('#set($s = "a\\"")$s', None),               # \" does not escape a quote: a syntax error
    ('#set($s = "say ""hi""")$s', 'say "hi"'),   # Velocity's doubled quote
])
def test_string_literals_keep_backslashes(template, expected):
    if expected is None:
        with pytest.raises(VtlError):
            out(template)
    else:
        assert out(template) == expected


# --- references, #set, #if --------------------------------------------------------------------------

def test_undefined_references_render_as_empty_strings():
    assert out("[$nothing][$!nothing][${nothing}][$context.missing.deeper][$input.params('x')]") == "[][][][][]"


def test_set_to_null_keeps_the_previous_value():
    assert out('#set($a = "kept")#set($a = $nothing)#set($a = $input.path(\'$.missing\'))$a', body="{}") == "kept"


def test_set_evaluates_its_right_side_once():
    assert out("#set($l = [])#set($ignored = $l.add(1))$l.size()") == "1"


def test_set_inside_foreach_is_visible_after_the_loop():
    assert out("#foreach($i in [1, 2, 3])#set($last = $i)#end$last") == "3"


@pytest.mark.parametrize("condition, expected", [
    ("$nothing", "no"),
    ("!$nothing", "yes"),
    ('""', "yes"),        # Velocity 1.7: any non-null non-Boolean is true
    ("0", "yes"),
    ("false", "no"),
    ("!false", "yes"),
    ("$nothing && true", "no"),
    ("$nothing || true", "yes"),
])
def test_if_truthiness_is_velocity_1_7(condition, expected):
    assert out(f"#if({condition})yes#{{else}}no#end") == expected


def test_booleans_render_lowercase():
    assert out("#set($t = true)#set($f = 1 == 2)$t $f") == "true false"


def test_arithmetic_and_concatenation_are_java_like():
    assert out("#set($a = 7 / 2)#set($b = -7 / 2)#set($c = -7 % 2)#set($d = 1 / 0)$a $b $c [$d]") == "3 -3 -1 []"
    assert out('#set($s = "n=" + 1)$s') == "n=1"
    assert out('#if(1 == "1")same#end') == "same"


def test_epoch_milliseconds_to_a_ttl_in_seconds():
    assert out("$context.requestTimeEpoch #set($ttl = $context.requestTimeEpoch / 1000 + 604800)$ttl",
               context={"requestTimeEpoch": 1700000000123}) == "1700000000123 1700604800"


def test_maps_and_lists_print_as_java_does():
    assert out('#set($m = {"a": 1, "b": true})#set($l = ["x", $nothing])$m $l') == "{a=1, b=true} [x, null]"


def test_a_syntax_error_is_a_vtl_error():
    with pytest.raises(VtlError):
        out("#if($x")


# --- Java String methods on every string -----------------------------------------------------------

# Velocity calls methods on references only, so each subject is #set first.
@pytest.mark.parametrize("subject, call, expected", [
    ('"ab-1"', 'matches("[a-z]+-\\d")', "true"),
    ('"ab-1x"', 'matches("[a-z]+-\\d")', "false"),        # a full match, not a search
    ('"AbC"', 'toLowerCase()', "abc"),
    ('"AbC"', 'toUpperCase()', "ABC"),
    ('" \t x \n"', 'trim()', "x"),
    ('"\u00a0x\u00a0"', 'trim().length()', "3"),            # Java trims only chars <= U+0020
    ('""', 'isEmpty()', "true"),
    ('"😀a"', 'length()', "3"),                             # UTF-16 code units
    ('"😀a"', 'substring(2)', "a"),
    ('"abc"', 'substring(1, 2)', "b"),
    ('"abc"', 'charAt(2)', "c"),
    ('"abc"', 'indexOf("c")', "2"),
    ('"abc"', 'indexOf("z")', "-1"),
    ('"abcabc"', 'lastIndexOf("b")', "4"),
    ('"abc"', 'contains("bc")', "true"),
    ('"abc"', 'startsWith("ab")', "true"),
    ('"abc"', 'endsWith("bc")', "true"),
    ('"abc"', 'equals("abc")', "true"),
    ('"abc"', 'equalsIgnoreCase("ABC")', "true"),
    ('"a.b.c"', 'replace(".", "/")', "a/b/c"),
    ('"a,b,,"', 'split(",").size()', "2"),                  # trailing empty strings dropped
    ('"a1b22"', 'replaceAll("\\d+", "#")', "a#b#"),
    ('"2024-01-05"', 'replaceAll("(\\d+)-(\\d+)-(\\d+)", "$3/$2/$1")', "05/01/2024"),
    ('"ab"', "replaceAll('(?<x>a)', '[${x}]')", "[a]b"),   # single quotes: no interpolation
    ('"a"', "replaceAll('a', '\\$1')", "$1"),               # \$ is a literal dollar in Java
    ('"aa"', 'replaceFirst("a", "b")', "ba"),
    ('"abc"', 'toString().concat("d")', "abcd"),
])
def test_java_string_methods(subject, call, expected):
    assert out(f"#set($s = {subject})#set($r = $s.{call})$r") == expected


def test_string_methods_work_on_input_context_and_params_values():
    rendered = out(
        "$input.body.trim().toUpperCase() $context.requestId.length() $input.params('h').toLowerCase() "
        "$input.path('$.s').endsWith('z') $input.params().header.keySet().size()",
        body='{"s": "xyz"}', context={"requestId": "abcd"}, params={"header": {"h": "HeAder"}},
    )
    assert rendered == '{"S": "XYZ"} 4 header true 1'


def test_a_bad_replacement_group_fails_the_template():
    with pytest.raises(VtlError):
        out('#set($s = "a")#set($r = $s.replaceAll("a", "$2"))$r')


# --- $input ---------------------------------------------------------------------------------------

def test_input_body_is_the_raw_text():
    assert out("$input.body", body="not json at all") == "not json at all"


def test_an_empty_body_is_the_empty_object():
    # AWS renders `{}` for an empty payload, also through urlEncode (docs: APIGW-2)
    assert out("$input.body|$util.urlEncode($input.body)|$input.path('$').isEmpty()", body="") == "{}|%7B%7D|true"


@pytest.mark.parametrize("condition, expected", [
    ("$input.path('$.missing') == ''", True),       # recorded: isEmptyString "true" (docs: APIGW-5)
    ("$input.path('$.missing') == $null", True),    # recorded: isNull "true"
    ("'' == $input.path('$.missing')", True),
    ("$input.path('$.missing') != ''", False),
    ("$input.path('$.nothing') == ''", True),       # a JSON null, as recorded for {"listValue": null}
    ("$input.path('$.list') == ''", False),         # an empty list: recorded isEmptyString "false"
    ("$input.path('$.list') == $null", False),
    ("$input.params('X-Missing') == ''", True),     # a header that was not sent
    ("$input.path('$.missing') == 'x'", False),
    ("$input.path('$.missing') == 0", False),
])
def test_a_null_equals_the_empty_string_and_nothing_else(condition, expected):
    body = '{"nothing": null, "list": []}'

    assert out(f"#if({condition})yes#{{else}}no#end", body=body) == ("yes" if expected else "no")


@pytest.mark.parametrize("body, template, printed", [
    ('{"foo": "bar"}', "$input.path('$')", "{foo=bar}"),
    ('[{"foo": "bar"}]', "$input.path('$')", '[{"foo":"bar"}]'),
    ('{"foo": [{"nested": "bar"}]}', "$input.path('$')", '{foo=[{"nested":"bar"}]}'),
    ('[[{"foo": "bar"}]]', "$input.path('$')[0]", '[{"foo":"bar"}]'),
    ('{"foo": "bar"}', "$input.path('$').toString()", "{foo=bar}"),
    ('{"list": [{"foo": "bar"}]}', "$input.path('$').toString()", '{list=[{"foo":"bar"}]}'),
    ('{"a": [1, 2.5, true, null, "x"]}', "$input.path('$.a')", '[1,2.5,true,null,"x"]'),
    ('{"a": [1]}', "$util.parseJson($input.body).a", "[1]"),
])
def test_lists_from_json_print_as_json_and_maps_as_java_does(body, template, printed):
    # recorded on AWS (docs: APIGW-4); a list written in the template stays Java's [a, b]
    assert out(template, body=body) == printed


def test_a_list_literal_still_prints_as_java_does():
    assert out('#set($l = ["x", 1])$l $l.toString()') == "[x, 1] [x, 1]"


def test_input_json_gives_json_text_and_path_a_native_object():
    body = '{"a": {"b": [1, "x"]}, "s": "q\\"uote"}'

    assert out("$input.json('$.a')", body=body) == '{"b":[1,"x"]}'
    assert out("$input.json('$.s')", body=body) == '"q\\"uote"'
    assert out("$input.json('$.none') [$input.json('$.missing')]", body='{"none": null}') == "null []"
    # a list from the body prints as JSON, also inside a map (docs: APIGW-4)
    assert out("$input.path('$.a').size() $input.path('$.a.b').get(1) $input.path('$.a')", body=body) == (
        '1 x {b=[1,"x"]}'
    )


def test_input_json_of_a_body_that_is_not_json_fails():
    with pytest.raises(BodyNotJson):
        out("$input.json('$')", body="{nope")


def test_input_params_searches_path_then_querystring_then_header():
    params = {"path": {"a": "path"}, "querystring": {"a": "query", "b": "query"},
              "header": {"a": "h", "b": "h", "c": "h"}}

    assert out("$input.params('a') $input.params('b') $input.params('c')", params=params) == "path query h"


def test_header_lookups_are_case_sensitive():
    params = {"header": {"Idempotency-Key": "k"}}

    assert out("[$input.params('Idempotency-Key')][$input.params('idempotency-key')]", params=params) == "[k][]"


def test_input_params_map_has_the_three_kinds():
    params = {"querystring": {"q": "1"}, "header": {"H": "v"}}

    assert out("$input.params().path $input.params().querystring $input.params().header.get('H')",
               params=params) == "{} {q=1} v"


# --- $util ------------------------------------------------------------------------------------------

def test_parse_json_gives_navigable_objects():
    assert out("#set($o = $util.parseJson($input.body))$o.a.get(0) $o.b", body='{"a": [5], "b": null}') == "5 "


def test_parse_json_rejects_what_java_rejects():
    with pytest.raises(VtlError):
        out("$util.parseJson('NaN')")


def test_base64_is_utf8():
    assert out("$util.base64Encode('é/+') $util.base64Decode('w6kvKw==')") == "w6kvKw== é/+"


def test_base64_decode_rejects_garbage():
    with pytest.raises(VtlError):
        out("$util.base64Decode('*')")


def test_url_encoding_is_java_urlencoder():
    assert url_encode("a b~*._-é") == "a+b%7E*._-%C3%A9"
    assert out("$util.urlDecode('a+b%7E%C3%A9')") == "a b~é"


def test_url_encoding_a_null_renders_nothing():
    # recorded on AWS: `EncodedBodyAccess=` for $util.urlEncode($input.body.testAccess) (docs: APIGW-8)
    assert out("EncodedBodyAccess=$util.urlEncode($input.body.testAccess)", body='{"a": 1}') == "EncodedBodyAccess="


def test_url_decode_rejects_a_malformed_escape():
    with pytest.raises(ValueError):
        url_decode("100%")
    with pytest.raises(VtlError):
        out("$util.urlDecode('%zz')")


# --- $context: printing, overrides, purity (docs: APIGW-10, APIGW-12) -----------------------------

def test_maps_inside_context_print_as_nothing_but_can_be_walked():
    context = {"requestId": "r", "identity": {"sourceIp": "10.0.0.1", "user": None}}

    rendered = out("[$context.identity][$context.requestOverride][$context.requestOverride.header]"
                   "#foreach($k in $context.identity.keySet()) $k=$!context.identity.get($k)#end", context=context)

    assert rendered == "[][][] sourceIp=10.0.0.1 user="


def test_request_override_maps_take_assignments_of_every_spelling():
    # the recorded test_integration_mock_with_vtl_map_assignation, request then response template
    overrides = Overrides()
    run('#set($paramName = "foo")#set($context.requestOverride.querystring[$paramName] = "bar")'
        '#set($paramPutName = "putfoo")$context.requestOverride.querystring.put($paramPutName, "putBar")'
        '#set($context["requestOverride"].querystring["nestedfoo"] = "nestedFoo")'
        '#set($context.requestOverride.header.X-Trace = "t")', overrides=overrides)

    rendered = out('$context.requestOverride.querystring["foo"] $context.requestOverride.querystring["putfoo"] '
                   '$context.requestOverride.querystring["nestedfoo"] $context.requestOverride.header.X-Trace',
                   overrides=overrides)

    assert rendered == "bar putBar nestedFoo t"


def test_a_response_override_set_by_the_request_template_reaches_the_response_template():
    # recorded: statusOverride "444", fooHeader "bar", custom "is also passed around" (docs: APIGW-12)
    overrides = Overrides()
    run('#set($context.responseOverride.status = 444)#set($context.responseOverride.header.foo = "bar")'
        '#set($context.responseOverride.custom = "is also passed around")', overrides=overrides)

    rendered = run("$context.responseOverride.status $context.responseOverride.header.foo "
                   "$context.responseOverride.custom", overrides=overrides)

    assert (rendered, overrides.status, overrides.response_headers) == (
        "444 bar is also passed around", 444, {"foo": "bar"})


@pytest.mark.parametrize("second", [
    "#set($context.responseOverride.status = 500)",
    '#set($context.responseOverride.header.foo = "again")',
    '$context.requestOverride.header.put("X", "again")',
])
def test_an_override_written_twice_fails_the_template(second):
    # "Overrides are final": AWS answers 5XX (docs: APIGW-12)
    overrides = Overrides()
    run('#set($context.responseOverride.status = 409)#set($context.responseOverride.header.foo = "bar")'
        '#set($context.requestOverride.header.X = "x")', overrides=overrides)

    with pytest.raises(VtlError, match="overrides are final"):
        run(second, overrides=overrides)


def test_response_override_status_and_headers_are_read_back():
    overrides = Overrides()
    rendered = run('#set($context.responseOverride.status = 409)'
                   '#set($context.responseOverride.header.Access-Control-Allow-Origin = $input.params("Origin"))ok',
                   params={"header": {"Origin": "https://a.example"}}, overrides=overrides)

    assert (rendered, overrides.status, overrides.response_headers) == (
        "ok", 409, {"Access-Control-Allow-Origin": "https://a.example"})


def test_a_response_override_status_that_is_not_an_int_is_ignored():
    overrides = Overrides()
    run('#set($context.responseOverride.status = "409")', overrides=overrides)

    assert overrides.status is None


def test_the_callers_context_is_not_changed():
    context = {"requestId": "r", "nested": {"a": 1}}

    run('#set($context.requestId = "x")#set($context.nested.a = 2)', context=context)

    assert context == {"requestId": "r", "nested": {"a": 1}}


def test_stage_variables_are_available():
    assert out("$stageVariables.table", stage_variables={"table": "t1"}) == "t1"


def test_an_invalid_jsonpath_fails_the_template():
    with pytest.raises(VtlError):
        out("$input.path('$[')", body="{}")


def test_a_body_nested_as_deep_as_aws_parses_it_reaches_the_template():
    """AWS's parser takes 1,000 levels; converting them must not hit Python's recursion limit."""
    from devserver.vtl_java import JavaMap, JsonList, from_json

    nested: Any = 1
    for level in range(998):
        nested = {"a": nested} if level % 2 else [nested]

    converted = from_json(nested)

    depth = 0
    while isinstance(converted, (JavaMap, JsonList)):
        converted = converted["a"] if isinstance(converted, JavaMap) else converted[0]
        depth += 1
    assert (depth, converted) == (998, 1)
