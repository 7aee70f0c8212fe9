"""moto's PartiQL, made to run the app's UPDATE statements the way DynamoDB does.

The processor writes its outcomes back with PartiQL UPDATEs in BatchExecuteStatement calls
(chalicelib/writebacks.py). moto 5.2.5 cannot run them as DynamoDB does (docs: LOCAL-119): it
rejects arithmetic in SET and REMOVE, ignores the non-key part of an UPDATE's WHERE (so it never
answers ConditionalCheckFailed), and evaluates every statement over a copy of every item of every
table. DynamoDB Local, AWS's own engine, runs them as AWS does (docs: DDB-201), and
tests/test_moto_partiql.py checks that both backends answer the same statements alike.

Here an UPDATE of the form below runs as the conditional UpdateItem it means; any other statement
goes to moto unchanged:

    UPDATE "<table>" (SET "<a>" = ? | SET "<a>" = "<a>" + ? | REMOVE "<a>")...
        WHERE "<key>" = ? (AND "<attribute>" = ?)...

Like DynamoDB, the item must exist and every condition hold, else ConditionalCheckFailed; an
item that would grow past 400 KB is a ValidationError, and a value that is over 400 KB by itself
fails the whole call (docs: DDB-202). `install()` patches the DynamoDB backend
class, in moto's server (devserver/moto_server.py) and in-process (`mock_aws`) alike.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

_NAME = r'"([^"]+)"'
_SET = re.compile(rf'SET\s+{_NAME}\s*=\s*(?:\?|{_NAME}\s*\+\s*\?)\s*', re.I)
_REMOVE = re.compile(rf"REMOVE\s+{_NAME}\s*", re.I)
_UPDATE = re.compile(rf"^\s*UPDATE\s+{_NAME}\s+(?P<clauses>.*?)\s*WHERE\s+(?P<where>.*?)\s*;?\s*$", re.I | re.S)
_CONDITION = re.compile(rf"^{_NAME}\s*=\s*\?$")
_INSTALLED = "_storefirst_partiql"
MAX_ITEM_BYTES = 409_600  # docs: DDB-9


class NotOurs(ValueError):
    """The statement is not an UPDATE of the supported form: moto runs it as it would."""


@dataclass(frozen=True)
class Update:
    table: str
    update_expression: str
    condition_expression: str
    names: Dict[str, str]
    values: Dict[str, Dict[str, Any]]
    key: Dict[str, Dict[str, Any]]


def translate(statement: str, parameters: List[Dict[str, Any]], key_names: Callable[[str], List[str]]) -> Update:
    """The UpdateItem an UPDATE statement means, its `?` filled in order from `parameters`."""
    match = _UPDATE.match(statement)
    if not match:
        raise NotOurs(statement)
    table, clauses, where = match.group(1), match.group("clauses"), match.group("where")
    names: Dict[str, str] = {}
    values: Dict[str, Dict[str, Any]] = {}
    sets: List[str] = []
    removes: List[str] = []
    taken = 0

    def name(attribute: str) -> str:
        placeholder = f"#a{len(names)}"
        names[placeholder] = attribute
        return placeholder

    def value() -> str:
        nonlocal taken
        if taken >= len(parameters):
            raise NotOurs("fewer parameters than ?")
        placeholder = f":p{taken}"
        values[placeholder] = parameters[taken]
        taken += 1
        return placeholder

    position = 0
    while position < len(clauses):
        found = _SET.match(clauses, position) or _REMOVE.match(clauses, position)
        if not found:
            raise NotOurs(clauses[position:])
        if found.re is _SET:
            target, added_to = found.group(1), found.group(2)
            if added_to is None:
                sets.append(f"{name(target)} = {value()}")
            elif added_to == target:
                attribute = name(target)
                sets.append(f"{attribute} = {attribute} + {value()}")
            else:
                raise NotOurs(found.group(0))
        else:
            removes.append(name(found.group(1)))
        position = found.end()
    conditions: List[Tuple[str, str]] = []  # (attribute, value placeholder)
    for part in re.split(r"\s+AND\s+", where, flags=re.I):
        condition = _CONDITION.match(part.strip())
        if not condition:
            raise NotOurs(part)
        conditions.append((condition.group(1), value()))
    if taken != len(parameters):
        raise NotOurs("more parameters than ?")
    keys = key_names(table)
    key = {attribute: values.pop(holder) for attribute, holder in conditions if attribute in keys}
    if set(key) != set(keys):
        raise NotOurs("the WHERE clause does not name the whole key")
    checks = [f"attribute_exists({name(keys[0])})"]
    checks += [f"{name(attribute)} = {holder}" for attribute, holder in conditions if attribute not in keys]
    expression = (("SET " + ", ".join(sets)) if sets else "") + ((" REMOVE " + ", ".join(removes)) if removes else "")
    return Update(table, expression.strip(), " AND ".join(checks), names, values, key)


def install() -> None:
    """Make moto's DynamoDB backend run the app's UPDATE statements as DynamoDB does (idempotent)."""
    from moto.dynamodb.exceptions import ConditionalCheckFailed, ItemSizeTooLarge, MockValidationException
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType

    if getattr(DynamoDBBackend, _INSTALLED, False):
        return
    original_batch = DynamoDBBackend.batch_execute_statement
    original_single = DynamoDBBackend.execute_statement

    def run(backend: Any, statement: str, parameters: List[Dict[str, Any]]) -> None:
        def key_names(table: str) -> List[str]:
            return [attribute["AttributeName"] for attribute in backend.get_table(table).schema]
        update = translate(statement, parameters, key_names)
        table = backend.get_table(update.table)
        item = table.get_item(*backend.get_keys_value(table, update.key))
        before = copy.deepcopy(item.attrs) if item is not None else None
        try:
            backend.update_item(update.table, update.key, update.update_expression, update.names, update.values,
                                condition_expression=update.condition_expression)
        except MockValidationException:
            # moto applies an update in place and stops where the item grows too large; DynamoDB
            # rejects it whole.
            if item is not None:
                item.attrs = before
            raise

    def batch_execute_statement(self: Any, statements: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        for statement in statements:
            if any(DynamoType(p).size() > MAX_ITEM_BYTES for p in statement.get("Parameters", [])):
                # A value that cannot fit in any item fails the whole call, as on DynamoDB.
                raise ItemSizeTooLarge()
        responses: List[Dict[str, Any]] = []
        for statement in statements:
            try:
                run(self, statement["Statement"], statement.get("Parameters", []))
                responses.append({"TableName": _table_of(statement["Statement"])})
            except NotOurs:
                responses.extend(original_batch(self, [statement]))
            except ConditionalCheckFailed:
                responses.append(_error("ConditionalCheckFailed", "The conditional request failed", statement))
            except MockValidationException as exc:
                responses.append(_error("ValidationError", exc.message, statement))
        return responses

    def execute_statement(self: Any, statement: str, parameters: List[Dict[str, Any]]) -> Any:
        try:
            run(self, statement, parameters)
            return []
        except NotOurs:
            return original_single(self, statement, parameters)

    DynamoDBBackend.batch_execute_statement = batch_execute_statement  # type: ignore[method-assign]
    DynamoDBBackend.execute_statement = execute_statement  # type: ignore[method-assign]
    setattr(DynamoDBBackend, _INSTALLED, True)


def _table_of(statement: str) -> Optional[str]:
    match = _UPDATE.match(statement)
    return match.group(1) if match else None


def _error(code: str, message: str, statement: Dict[str, Any]) -> Dict[str, Any]:
    return {"Error": {"Code": code, "Message": message}, "TableName": _table_of(statement["Statement"])}
