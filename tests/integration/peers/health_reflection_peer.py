#!/usr/bin/python3
"""A python3-grpcio client of argot's health and reflection services.

  health_reflection_peer.py PORT STUBS

STUBS is a directory with python stubs protoc generated at test time from
Debian's grpc/health/v1/health.proto and grpc/reflection/v1alpha/
reflection.proto. The server (rpc_health_reflection_test.c) serves health,
reflection and argot.link.v1.Link, with "argot.link.v1.Link" SERVING.

Prints one line per case ("ok NAME" or "FAIL NAME: why") and exits 1 if
any failed. Halfway it prints "watching" and expects the server to set
argot.link.v1.Link NOT_SERVING: its Watch must see that within a second.
"""
import os
import sys
import time

import grpc

sys.path.insert(0, sys.argv[2])
# the stubs' modules live under grpc.*, beside grpcio's own package
grpc.__path__.append(os.path.join(sys.argv[2], "grpc"))
from google.protobuf import descriptor_pb2, descriptor_pool  # noqa: E402
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc.reflection.v1alpha import reflection_pb2, reflection_pb2_grpc  # noqa: E402

LINK = "argot.link.v1.Link"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

ch = grpc.insecure_channel("127.0.0.1:%s" % sys.argv[1])
health = health_pb2_grpc.HealthStub(ch)
refl = reflection_pb2_grpc.ServerReflectionStub(ch)
failed = 0


def case(name, fn):
    global failed
    try:
        fn()
        print("ok", name, flush=True)
    except Exception as e:  # report every case, then fail at the end
        failed += 1
        print("FAIL %s: %r" % (name, e), flush=True)


def check(service):
    return health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


def check_serving():
    assert check("") == SERVING
    assert check(LINK) == SERVING
    try:
        check("no.such.Service")
        raise AssertionError("no error for an unknown service")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND, e.code()


def watch_change():
    call = health.Watch(health_pb2.HealthCheckRequest(service=LINK), timeout=20)
    first = next(call)
    assert first.status == SERVING, first
    unknown = health.Watch(health_pb2.HealthCheckRequest(service="not.yet.Known"), timeout=20)
    assert next(unknown).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    unknown.cancel()
    print("watching", flush=True)
    t0 = time.monotonic()
    second = next(call)
    took = time.monotonic() - t0
    call.cancel()
    assert second.status == NOT_SERVING, second
    assert took < 1.0, "the change took %.3f s" % took


def check_after_set():
    assert check(LINK) == NOT_SERVING


def ask(**kw):
    req = reflection_pb2.ServerReflectionRequest(host="localhost", **kw)
    resps = list(refl.ServerReflectionInfo(iter([req]), timeout=10))
    assert len(resps) == 1, resps
    r = resps[0]
    assert r.valid_host == "localhost", r.valid_host
    assert r.original_request == req, r.original_request
    return r


def list_services():
    names = sorted(s.name for s in ask(list_services="").list_services_response.service)
    want = sorted([LINK, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                   "grpc.reflection.v1.ServerReflection"])
    assert names == want, names


def files_of(symbol):
    r = ask(file_containing_symbol=symbol)
    assert r.HasField("file_descriptor_response"), r
    return [descriptor_pb2.FileDescriptorProto.FromString(b)
            for b in r.file_descriptor_response.file_descriptor_proto]


def service_of(files, name, full):
    svc = [s for f in files for s in f.service if s.name == name]
    assert len(svc) == 1, [f.name for f in files]
    # the descriptors are whole: a pool builds them, imports first
    pool = descriptor_pool.DescriptorPool()
    for f in reversed(files):
        pool.Add(f)
    pool.FindServiceByName(full)
    return svc[0]


def symbol_link():
    files = files_of(LINK)
    assert files[0].name == "argot/link/v1/link.proto", files[0].name
    push = service_of(files, "Link", LINK).method
    assert [m.name for m in push] == ["Push"], push
    assert push[0].client_streaming and push[0].server_streaming
    assert push[0].input_type == ".argot.link.v1.Frame", push[0].input_type


def symbol_health():
    files = files_of("grpc.health.v1.Health.Watch")
    assert [f.name for f in files] == ["grpc/health/v1/health.proto"], files
    methods = service_of(files, "Health", "grpc.health.v1.Health").method
    assert [m.name for m in methods] == ["Check", "Watch"], methods
    assert methods[1].server_streaming and not methods[1].client_streaming


def symbol_reflection():
    files = files_of("grpc.reflection.v1alpha.ServerReflection")
    service_of(files, "ServerReflection", "grpc.reflection.v1alpha.ServerReflection")


def not_found():
    for kw in ({"file_containing_symbol": "no.Such"}, {"file_by_filename": "no/such.proto"},
               {"all_extension_numbers_of_type": "argot.link.v1.Frame"}):
        r = ask(**kw)
        assert r.HasField("error_response"), r
        assert r.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0], r
        assert list(kw.values())[0] in r.error_response.error_message, r


case("check_serving", check_serving)
case("watch_change", watch_change)
case("check_after_set", check_after_set)
case("list_services", list_services)
case("symbol_link", symbol_link)
case("symbol_health", symbol_health)
case("symbol_reflection", symbol_reflection)
case("not_found", not_found)
sys.exit(1 if failed else 0)
