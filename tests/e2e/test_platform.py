"""End-to-end check of the all-in-one platform with stock gRPC tooling.

Starts the `patto` launcher (what `make run` runs) on free ports and a fresh data directory, then
checks with grpcio, grpcio-health-checking and grpcio-reflection -- clients nobody here wrote --
that every service answers health SERVING, lists its `patto.<theme>.v1` service through
reflection, can be called from descriptors fetched through reflection alone, and that the
gateway answers GraphQL. Finally SIGTERM must stop everything cleanly with exit code 0.
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("PATTO_BIN", os.path.join(ROOT, "target", "debug", "patto"))

SERVICES = {
    "social": "patto.social.v1.SocialService",
    "building": "patto.building.v1.BuildingService",
    "culture": "patto.culture.v1.CultureService",
    "employment": "patto.employment.v1.EmploymentService",
    "taxes": "patto.taxes.v1.TaxesService",
    "environment": "patto.environment.v1.EnvironmentService",
    "publicworks": "patto.publicworks.v1.PublicWorksService",
}


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="module")
def platform():
    ports = free_ports(len(SERVICES) + 1)
    env = dict(os.environ)
    env.update({f"PATTO_{name.upper()}_PORT": str(p) for name, p in zip(SERVICES, ports)})
    env["PATTO_HTTP_PORT"] = str(ports[-1])
    env["PATTO_LOG_FORMAT"] = "json"
    with tempfile.TemporaryDirectory() as data_dir:
        env["PATTO_DATA_DIR"] = data_dir
        log = open(os.path.join(data_dir, "patto.log"), "w+")
        proc = subprocess.Popen([BINARY], env=env, stdout=log, stderr=subprocess.STDOUT)
        http = f"http://127.0.0.1:{ports[-1]}"
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"patto exited early with {proc.returncode}:\n{log.read()}")
            try:
                with urllib.request.urlopen(f"{http}/health/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the platform did not become ready within 180 s")
            time.sleep(0.2)
        yield {
            "proc": proc,
            "http": http,
            "grpc": {name: f"127.0.0.1:{p}" for name, p in zip(SERVICES, ports)},
            "log": log,
            "data_dir": data_dir,
        }
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("name", list(SERVICES))
def test_health_is_serving(platform, name):
    with grpc.insecure_channel(platform["grpc"][name]) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        # The gateway is ready as soon as it has a schema; a service seeding its demo data (taxes
        # reads every comune's Catasto from building first) starts serving a little later.
        for service in ("", SERVICES[name]):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=90)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, (name, service)


@pytest.mark.parametrize("name", list(SERVICES))
def test_reflection_lists_and_describes_the_service(platform, name):
    with grpc.insecure_channel(platform["grpc"][name]) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        listed = set(db.get_services())
        assert SERVICES[name] in listed
        assert "patto.common.v1.IndicatorsService" in listed
        assert "grpc.health.v1.Health" in listed
        # Only this service's theme is announced, not the whole platform's.
        assert not any(s.startswith("patto.") and s.split(".")[1] not in (name, "common") for s in listed)
        pool = descriptor_pool.DescriptorPool(db)
        service = pool.FindServiceByName(SERVICES[name])
        assert len(service.methods) >= 5
        streaming = [m for m in service.methods if m.server_streaming or m.client_streaming]
        assert streaming, "every theme has a watch and/or an import stream"


def token(platform, *args):
    """A bearer token from `patto token` (the dev issuer the running platform trusts)."""
    out = subprocess.run(
        [BINARY, "--data-dir", platform["data_dir"], "token", *args],
        check=True, capture_output=True, text=True, timeout=30,
    )
    return out.stdout.strip()


def call(channel, pool, method, request_fields, metadata=None):
    service, rpc = method.rsplit("/", 1)
    m = pool.FindServiceByName(service).FindMethodByName(rpc)
    request = GetMessageClass(m.input_type)(**request_fields)
    response_class = GetMessageClass(m.output_type)
    return channel.unary_unary(
        f"/{method}",
        request_serializer=lambda msg: msg.SerializeToString(),
        response_deserializer=response_class.FromString,
    )(request, timeout=10, metadata=metadata)


def test_culture_answers_through_reflection_alone(platform):
    with grpc.insecure_channel(platform["grpc"]["culture"]) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        events = call(channel, pool, "patto.culture.v1.CultureService/ListEvents", {"istat_code": "082053"})
        assert events.page_info.total_count >= 24
        assert all(e.istat_code == "082053" for e in events.events)
        booking = {"event_id": events.events[0].id, "fiscal_code": "RCCMNL83S18D969H", "seats": 1}
        # No token: personal data and changes need one.
        with pytest.raises(grpc.RpcError) as anonymous:
            call(channel, pool, "patto.culture.v1.CultureService/CreateBooking", booking)
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # A token that does not verify is refused as such, not treated as anonymous.
        with pytest.raises(grpc.RpcError) as forged:
            call(channel, pool, "patto.culture.v1.CultureService/CreateBooking", booking,
                 metadata=[("authorization", "Bearer not.a.token")])
        assert forged.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Another citizen may not book in this citizen's name.
        other = [("authorization", "Bearer " + token(platform, "--citizen", "VRDLGU75B12G273D"))]
        with pytest.raises(grpc.RpcError) as denied:
            call(channel, pool, "patto.culture.v1.CultureService/CreateBooking", booking, metadata=other)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # The citizen, signed in with `patto token`: bad input names the field.
        mine = [("authorization", "Bearer " + token(platform, "--citizen", "RCCMNL83S18D969H"))]
        with pytest.raises(grpc.RpcError) as bad:
            call(channel, pool, "patto.culture.v1.CultureService/CreateBooking", {**booking, "seats": 0},
                 metadata=mine)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "seats" in bad.value.details()
        booked = call(channel, pool, "patto.culture.v1.CultureService/CreateBooking", booking, metadata=mine)
        assert booked.booking.fiscal_code == "RCCMNL83S18D969H"


def test_unknown_rpcs_are_named(platform):
    # Each service hosts only its own theme: another theme's RPC is UNIMPLEMENTED, and says so.
    with grpc.insecure_channel(platform["grpc"]["culture"]) as channel:
        with pytest.raises(grpc.RpcError) as err:
            channel.unary_unary("/patto.social.v1.SocialService/ListBenefitSchemes")(b"", timeout=5)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "does not host patto.social.v1.SocialService" in err.value.details()


def test_graphql_answers(platform):
    body = json.dumps({"query": "{ __typename }"}).encode()
    request = urllib.request.Request(
        f"{platform['http']}/graphql", data=body, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        assert json.load(r) == {"data": {"__typename": "Query"}}


def test_sigterm_stops_cleanly(platform):
    proc = platform["proc"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
