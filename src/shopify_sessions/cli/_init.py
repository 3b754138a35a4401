"""``shopify-sessions init``: create the default sessions table, or print its DDL."""

from __future__ import annotations

import json
from typing import Annotated, NoReturn

import typer
from sqlalchemy import MetaData
from sqlalchemy.schema import CreateIndex, CreateTable

from .._errors import MissingSessionTableError
from ..sqlalchemy import session_table
from ..sqlalchemy._core import describe_table
from ._connect import (
    describe_dynamodb,
    is_dynamodb,
    is_redis,
    lock_table_ddl,
    open_dynamodb,
    open_storage,
    reflect,
)
from ._options import DEFAULT_TABLE, Json, Schema, TableName, Url
from ._output import Output, plain_name, reporting

Sql = Annotated[
    bool, typer.Option("--sql", help="Print the DDL for the database's dialect; change nothing.")
]


def init(
    url: Url,
    table: TableName = DEFAULT_TABLE,
    schema: Schema = None,
    sql: Sql = False,
    as_json: Json = False,
) -> None:
    """Create the default sessions table (and its index on shop) and its lock table,
    unless they exist.

    The table has the columns and types of Shopify's Drizzle schema for the dialect
    (see the README); the lock table holds the session locks' leases. With --sql, print
    their DDL for review instead. On DynamoDB: the table of the URL and its index on
    shop, billed on demand (--sql prints the AWS CLI's create-table input).
    """
    with reporting("init", as_json) as output:
        if is_redis(url):
            output.say("Redis needs no table: there is nothing to create")
            output.done({"store": "redis", "created": False, "applied": False})
        if is_dynamodb(url):
            _init_dynamodb(output, url, sql)
        definition = session_table(MetaData(), table, schema=schema)
        storage = open_storage(url, definition, None, create=True, connect=not sql)
        dialect = storage.engine.dialect
        result: dict[str, object] = {"table": plain_name(definition), "dialect": dialect.name}
        if sql:
            statements = [str(CreateTable(definition).compile(dialect=dialect)).strip()]
            statements += [
                str(CreateIndex(index).compile(dialect=dialect)).strip()
                for index in sorted(definition.indexes, key=lambda index: str(index.name))
            ]
            statements += lock_table_ddl(storage.lock_table, dialect)
            text = ";\n\n".join(statements) + ";"
            result["sql"] = text
            if not output.as_json:
                output.out.print(text, markup=False)
            output.done(result)
        existed = reflect(storage.engine, table, schema) is not None
        if existed:  # a table that can't hold sessions is refused before anything is made
            storage.check_table()
        storage.create_table()
        storage.check_table()
        storage.close()
        result["created"] = not existed
        result["lock_table"] = describe_table(storage.lock_table)
        output.say(
            f"{describe_table(definition)} already exists; it can hold sessions"
            if existed
            else f"created {describe_table(definition)} on {dialect.name}"
        )
        output.done(result)


def _init_dynamodb(output: Output, url: str, sql: bool) -> NoReturn:
    """Create the DynamoDB table of ``url`` and its index, unless the table exists."""
    from ..dynamodb import table_definition

    storage = open_dynamodb(url)
    request = table_definition(storage.table_name, storage.shop_index)
    result: dict[str, object] = {"store": "dynamodb", "table": storage.table_name}
    if sql:
        text = json.dumps(request, indent=2)
        result["create_table"] = request
        if not output.as_json:
            output.out.print(text, markup=False, highlight=False)
        output.done(result)
    try:
        storage.check_table()
        existed = True
    except MissingSessionTableError:
        existed = False
    if not existed:
        storage.create_table()
    storage.close()
    result["created"] = not existed
    output.say(
        f"{describe_dynamodb(storage)} already exists; it can hold sessions"
        if existed
        else f"created {describe_dynamodb(storage)} and its index {storage.shop_index} on shop"
    )
    output.done(result)
