"""The botocore client of a storage: the app's own, checked for kind, or one built from
boto3's options or a ``dynamodb://`` URL."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .._errors import DatabaseURLError
from ._core import DEFAULT_SHOP_INDEX, DEFAULT_TABLE_NAME

SCHEME = "dynamodb"

#: A client's bounds when the storage builds it: botocore's ``standard`` retries (which
#: back off on throttling and retry a dropped connection), and bounded waits for an
#: endpoint that stopped answering (botocore waits 60 s for each by default, longer than
#: a Lambda function or a web request lives).
DEFAULT_RETRIES = {"mode": "standard", "max_attempts": 4}
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0

#: What a URL's query may say: boto3's option each one sets.
_URL_OPTIONS = {
    "region": "region_name",
    "region_name": "region_name",
    "endpoint_url": "endpoint_url",
    "endpoint": "endpoint_url",
}


@dataclass(slots=True)
class ClientPlan:
    """How a storage gets its client: the table, the index, and boto3's options (with a
    profile) for one the storage builds, or the app's ``client``."""

    table: str
    shop_index: str
    client: Any = None
    profile: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def plan_client(
    table: str,
    *,
    client: Any,
    shop_index: str | None,
    endpoint_url: str | None,
    region_name: str | None,
    client_options: Mapping[str, Any] | None,
    is_async: bool,
) -> ClientPlan:
    """Where the storage's table is and how its client comes: from a ``dynamodb://``
    URL or a table name, with the app's client or boto3's options (arguments win over
    the URL's query)."""
    if not isinstance(table, str):
        raise TypeError(f"table must be a table name or a dynamodb:// URL, not {table!r}")
    plan = from_url(table) if "://" in table else ClientPlan(table, DEFAULT_SHOP_INDEX)
    if shop_index is not None:
        plan.shop_index = shop_index
    given = {"endpoint_url": endpoint_url, "region_name": region_name}
    plan.options.update({name: value for name, value in given.items() if value is not None})
    extra = dict(client_options or {})
    if client is not None:
        if plan.options or extra or plan.profile:
            raise TypeError(
                "endpoint_url, region_name and client_options (and a URL's options) go "
                "with a client the storage builds, not with a client of your own"
            )
        check_client(client, is_async=is_async)
        plan.client = client
        return plan
    plan.profile = extra.pop("profile_name", plan.profile)
    plan.options.update(extra)
    plan.options["config"] = _config(plan.options.get("config"))
    _check_region(plan, is_async)
    return plan


def from_url(url: str) -> ClientPlan:
    """The plan of ``dynamodb://<table>?region=...&endpoint_url=...&shop_index=...``
    (also ``profile=``); no table means the Node adapter's default one."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME:
        raise DatabaseURLError(f"not a DynamoDB URL (dynamodb://<table>): {parts.scheme or url!r}")
    if parts.path not in ("", "/") or parts.fragment or "@" in parts.netloc:
        raise DatabaseURLError(
            "a DynamoDB URL is dynamodb://<table>?region=<region>[&endpoint_url=<url>]"
            "[&shop_index=<index>][&profile=<profile>]; credentials come from boto3's chain"
        )
    plan = ClientPlan(unquote(parts.netloc) or DEFAULT_TABLE_NAME, DEFAULT_SHOP_INDEX)
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name in _URL_OPTIONS:
            plan.options[_URL_OPTIONS[name]] = value
        elif name == "shop_index":
            plan.shop_index = value
        elif name == "profile":
            plan.profile = value
        else:
            allowed = ", ".join(sorted({*_URL_OPTIONS, "shop_index", "profile"}))
            raise DatabaseURLError(f"a DynamoDB URL takes {allowed}; not {name!r}")
    return plan


def _config(given: Any) -> Any:
    """botocore's ``Config`` of a built client: the defaults above under the app's."""
    from botocore.config import Config

    ours = Config(
        retries=dict(DEFAULT_RETRIES),
        connect_timeout=DEFAULT_CONNECT_TIMEOUT,
        read_timeout=DEFAULT_READ_TIMEOUT,
    )
    if given is None:
        return ours
    if not isinstance(given, Config):
        raise TypeError(f"config must be a botocore.config.Config, not {given!r}")
    return ours.merge(given)


def _check_region(plan: ClientPlan, is_async: bool) -> None:
    """Refuse, before any call, a client that would have no region to sign for.

    botocore reads ``AWS_DEFAULT_REGION`` and the config files; ``AWS_REGION``, which the
    AWS SDKs of other languages read (a Node app's environment often has only it), is
    taken when botocore finds nothing.
    """
    if plan.options.get("region_name"):
        return
    if is_async:
        from aiobotocore.session import AioSession

        session: Any = AioSession(profile=plan.profile)
    else:
        import botocore.session

        session = botocore.session.Session(profile=plan.profile)
    try:
        region = session.get_config_variable("region")
    except Exception as error:  # a profile that does not exist, a broken config file
        raise DatabaseURLError(f"cannot read the AWS configuration: {error}") from error
    if not region and os.environ.get("AWS_REGION"):
        plan.options["region_name"] = os.environ["AWS_REGION"]
    elif not region:
        raise DatabaseURLError(
            "no AWS region: give ?region= in the URL, region_name=, or set AWS_REGION "
            "(or AWS_DEFAULT_REGION)"
        )


def open_client(plan: ClientPlan) -> Any:
    """A boto3 DynamoDB client built from ``plan``."""
    import boto3

    return boto3.session.Session(profile_name=plan.profile).client("dynamodb", **plan.options)


async def aopen_client(plan: ClientPlan) -> Any:
    """An aiobotocore DynamoDB client built from ``plan``, open."""
    from aiobotocore.session import AioSession

    context = AioSession(profile=plan.profile).create_client("dynamodb", **plan.options)
    return await context.__aenter__()


def close_client(client: Any) -> None:
    """Close a boto3 client's connections."""
    client.close()


async def aclose_client(client: Any) -> None:
    """Close an aiobotocore client's connections."""
    await client.close()


def check_client(client: object, *, is_async: bool) -> None:
    """Refuse what is not a low-level DynamoDB client of the storage's kind, naming the
    class to use instead."""
    from botocore.client import BaseClient

    if not isinstance(client, BaseClient):
        advice = ""
        if hasattr(client, "meta") and hasattr(getattr(client, "meta", None), "client"):
            advice = ": this is a boto3 resource; give its .meta.client"
        raise TypeError(
            f"expected a DynamoDB client (boto3.client('dynamodb') or aiobotocore's), "
            f"not {type(client).__name__}{advice}"
        )
    service = client.meta.service_model.service_name
    if service != "dynamodb":
        raise TypeError(f"expected a DynamoDB client, not a client of {service}")
    is_aio = any(kind.__module__.startswith("aiobotocore") for kind in type(client).__mro__)
    if is_aio != is_async:
        use = "AsyncDynamoDBSessionStorage" if is_aio else "DynamoDBSessionStorage"
        kind = "an aiobotocore" if is_aio else "a boto3"
        raise TypeError(f"{kind} client goes with {use}")
