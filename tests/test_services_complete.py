"""Every RPC of every service is implemented and has an access rule; the gateway streams nothing;
each service's migrations produce exactly its tables."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from contactpoint.platform import migrate
from contactpoint.platform.db import make_engine

SERVICERS = {
    "identity": ("services.identity.servicer", "IdentityServicer"),
    "records": ("services.records.servicer", "RecordsServicer"),
    "audit": ("services.audit.servicer", "AuditServicer"),
    "gateway": ("gateway.servicer", "GatewayServicer"),
}


@pytest.mark.parametrize("service", sorted(SERVICERS))
def test_every_rpc_is_implemented_and_has_an_access_rule(service: str) -> None:
    module_name, class_name = SERVICERS[service]
    module = importlib.import_module(module_name)
    servicer = getattr(module, class_name)
    for method in module.DESCRIPTOR.methods:
        assert method.name in module.ACCESS, f"{service}.{method.name} has no access rule"
        impl = getattr(servicer, method.name)
        # The generated base (…_pb2_grpc) answers UNIMPLEMENTED; a mixin of ours may implement it.
        base = next(
            b for b in servicer.__mro__ if b.__module__.endswith("_pb2_grpc") and method.name in vars(b)
        )
        assert impl is not getattr(base, method.name), f"{service}.{method.name} is not implemented"


def test_gateway_has_no_streaming_rpc() -> None:
    from gateway.servicer import DESCRIPTOR

    assert all(not (m.client_streaming or m.server_streaming) for m in DESCRIPTOR.methods)


@pytest.mark.parametrize("service", ["identity", "records", "audit"])
def test_migrations_match_the_tables(service: str, database_url: str) -> None:
    main = importlib.import_module(f"services.{service}.main")
    metadata: MetaData = importlib.import_module(f"services.{service}.tables").metadata
    migrate.upgrade(service, main.MIGRATIONS, database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": f"alembic_version_{service}"})
            diff = [
                d
                for d in compare_metadata(ctx, metadata)
                if not (d[0] == "remove_table" and d[1].name.startswith("alembic_version"))
            ]
    finally:
        engine.dispose()
    assert diff == []
