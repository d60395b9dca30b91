#!/usr/bin/python3
"""A gRPC peer from Debian's python3-grpcio, for interop tests with argot.

  grpc_peer.py server [TLS]       serve /t.S/* on 127.0.0.1, print the port
  grpc_peer.py client PORT [TLS]  call /t.S/* on 127.0.0.1:PORT, print one line
                                  per case ("ok NAME" or "FAIL NAME: why"),
                                  exit 1 if any failed

TLS options (PEM files; without --cert, --key or --ca: plaintext):
  server: --cert F --key F  serve TLS with this certificate chain and key
          --ca F            and require client certificates this CA issued
  client: --ca F            TLS, trusting this CA for the server's certificate
          --cert F --key F  present this client certificate (mutual TLS)
          --server-name N   verify the server's certificate for N (default:
                            the target, 127.0.0.1)
  client: --cases A,B       run these cases (default: every plain one)
          --expect-identity NAME   for the whoami case

Messages are raw bytes (generic handlers, no protobuf), so the peer needs
nothing but grpcio. Both sides implement the same service:
  Echo   unary: the request back; request metadata x-in comes back as the
         response header x-out; trailer x-trl-bin = 00 01 fe
  Fail   unary: NOT_FOUND "no row with key 'k7' <U+263A>"
  Many   server streaming: request "N": N messages of 100 bytes 'a'+i%26
  Count  client streaming: the number of messages, as text
  Bidi   bidirectional: each message back at once
  Wait   unary that never answers (for deadlines)
  Whoami unary: the client certificate's common name, "(none)" without one
The client's extra cases: "whoami" (Whoami answers --expect-identity) and
"refused" (a call fails with UNAVAILABLE: the handshake was refused).
"""
import argparse
import sys
import time
from concurrent import futures

import grpc

FAIL_MSG = "no row with key 'k7' \u263a"


def echo(req, ctx):
    md = dict(ctx.invocation_metadata())
    if "x-in" in md:
        ctx.send_initial_metadata((("x-out", md["x-in"]),))
    ctx.set_trailing_metadata((("x-trl-bin", b"\x00\x01\xfe"),))
    return req


def fail(req, ctx):
    ctx.abort(grpc.StatusCode.NOT_FOUND, FAIL_MSG)


def many(req, ctx):
    for i in range(int(req)):
        yield bytes([97 + i % 26]) * 100


def count(it, ctx):
    return str(sum(1 for _ in it)).encode()


def bidi(it, ctx):
    for m in it:
        yield m


def wait(req, ctx):
    while ctx.is_active():
        time.sleep(0.01)
    return b""


def whoami(req, ctx):
    names = ctx.auth_context().get("x509_common_name") or [b"(none)"]
    return names[0]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def serve(args):
    h = grpc.method_handlers_generic_handler("t.S", {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Many": grpc.unary_stream_rpc_method_handler(many),
        "Count": grpc.stream_unary_rpc_method_handler(count),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Wait": grpc.unary_unary_rpc_method_handler(wait),
        "Whoami": grpc.unary_unary_rpc_method_handler(whoami),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((h,))
    if args.cert:
        creds = grpc.ssl_server_credentials(
            [(read(args.key), read(args.cert))],
            root_certificates=read(args.ca) if args.ca else None,
            require_client_auth=bool(args.ca))
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


def client(args):
    target = "127.0.0.1:%s" % args.port
    if args.ca or args.cert:
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(args.ca) if args.ca else None,
            private_key=read(args.key) if args.key else None,
            certificate_chain=read(args.cert) if args.cert else None)
        opts = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
        ch = grpc.secure_channel(target, creds, options=opts)
    else:
        ch = grpc.insecure_channel(target)
    failed = 0

    def case(name, fn):
        nonlocal failed
        try:
            fn()
            print("ok", name, flush=True)
        except Exception as e:  # report every case, then fail at the end
            failed += 1
            print("FAIL %s: %r" % (name, e), flush=True)

    def unary():
        resp, call = ch.unary_unary("/t.S/Echo").with_call(
            b"ping", metadata=(("x-in", "alice"),), timeout=10)
        assert resp == b"ping", resp
        assert dict(call.initial_metadata()).get("x-out") == "alice", call.initial_metadata()
        assert dict(call.trailing_metadata()).get("x-trl-bin") == b"\x00\x01\xfe"

    def large():
        big = bytes(range(256)) * 4096  # 1 MiB
        assert ch.unary_unary("/t.S/Echo")(big, timeout=20) == big

    def status():
        try:
            ch.unary_unary("/t.S/Fail")(b"", timeout=10)
            raise AssertionError("no error")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e.code()
            assert e.details() == FAIL_MSG, e.details()

    def unimplemented():
        try:
            ch.unary_unary("/t.S/Nope")(b"", timeout=10)
            raise AssertionError("no error")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e.code()

    def server_stream():
        got = list(ch.unary_stream("/t.S/Many")(b"500", timeout=20))
        assert len(got) == 500 and got[27] == b"b" * 100

    def client_stream():
        assert ch.stream_unary("/t.S/Count")(iter([b"x"] * 300), timeout=20) == b"300"

    def bidi_stream():
        msgs = [("m%d" % i).encode() for i in range(100)]
        assert list(ch.stream_stream("/t.S/Bidi")(iter(msgs), timeout=20)) == msgs

    def deadline():
        try:
            ch.unary_unary("/t.S/Wait")(b"", timeout=0.3)
            raise AssertionError("no error")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.code()

    def who():
        got = ch.unary_unary("/t.S/Whoami")(b"", timeout=10)
        assert got == args.expect_identity.encode(), got

    def refused():
        try:
            ch.unary_unary("/t.S/Echo")(b"x", timeout=10)
            raise AssertionError("no error")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE, e.code()

    cases = {"unary_with_metadata": unary, "large_unary": large,
             "status_and_message": status, "unimplemented_method": unimplemented,
             "server_streaming": server_stream, "client_streaming": client_stream,
             "bidi_streaming": bidi_stream, "deadline": deadline,
             "whoami": who, "refused": refused}
    names = args.cases.split(",") if args.cases else list(cases)[:8]
    for name in names:
        case(name, cases[name])
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["server", "client"])
    ap.add_argument("port", nargs="?")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--server-name")
    ap.add_argument("--cases")
    ap.add_argument("--expect-identity")
    a = ap.parse_args()
    if a.mode == "server":
        serve(a)
    else:
        client(a)
