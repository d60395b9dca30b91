#!/usr/bin/python3
"""gRPC's interop test peers (doc/interop-test-descriptions.md) from Debian's
python3-grpcio, for argot's interop binaries to be run against.

  interop.py server --port N [TLS]
      serve grpc.testing.TestService on 127.0.0.1:N (0: any free port; never
      shared: no SO_REUSEPORT); print "listening PORT" once serving; exit 0
      on SIGTERM or SIGINT
      TLS: --use_tls=true --tls_cert_file F --tls_key_file F (PEM)

  interop.py client --server_host H --server_port N --test_case NAME [TLS]
      run NAME (a comma-separated list, or "all"); print "ok NAME" or
      "FAIL NAME: why" per case; exit 1 if any failed
      TLS: --use_tls=true [--ca_file F] [--server_host_override NAME]
      (--server_host_override is the name the server's certificate is checked
      for, and the :authority; without --ca_file, the system's roots)

Flags take "--flag=value" or "--flag value"; --use_tls takes true or false.

The messages and stubs are generated from Debian's grpc-proto
(/usr/share/grpc-proto/grpc/testing/*.proto) by protoc into a temporary
directory at start, removed at exit. They are Python modules grpc.testing.*,
a package python3-grpcio's own "grpc" does not have, so that directory's
grpc/ is added to grpc.__path__ (PYTHONPATH alone would not find them).

What python's API cannot do, and what this peer does instead:
  - A python server sees neither the grpc-encoding header nor a message's
    compressed flag, so it cannot check expect_compressed: it accepts such
    requests unchecked. Against this server, client_compressed_unary and
    client_compressed_streaming fail at their probe (a strict client
    expects INVALID_ARGUMENT), so tests run them only against a server that
    can tell.
  - A python client cannot see a response's compressed flag: in
    server_compressed_* it checks the responses' sizes and contents only.
  - A python client compresses all or none of a call's messages: in
    client_compressed_streaming the second message, which the spec sends
    uncompressed with expect_compressed false, goes compressed and marked
    expect_compressed true (gRPC's C++ server rejects a compressed message
    marked false; this passes a server that checks either way).
"""
import argparse
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

PROTO_DIR = "/usr/share/grpc-proto"
PROTOS = ["grpc/testing/test.proto", "grpc/testing/messages.proto", "grpc/testing/empty.proto"]
SERVICE = "grpc.testing.TestService"

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
SPECIAL_MSG = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"

CASES = ["empty_unary", "large_unary", "client_compressed_unary", "server_compressed_unary",
         "client_streaming", "client_compressed_streaming", "server_streaming",
         "server_compressed_streaming", "ping_pong", "empty_stream",
         "timeout_on_sleeping_server", "cancel_after_begin", "cancel_after_first_response",
         "custom_metadata", "status_code_and_message", "special_status_message",
         "unimplemented_method", "unimplemented_service"]

CODES = {c.value[0]: c for c in grpc.StatusCode}
TIMEOUT = 30  # seconds, for every call without a deadline of its own


def generate_stubs():
    """Runs protoc into a new temporary directory and imports the result;
    returns (directory, empty_pb2, messages_pb2, test_pb2_grpc)."""
    d = tempfile.mkdtemp(prefix="argot-interop-py-")
    # Debian's protoc, to match Debian's python3-protobuf (not another on PATH)
    cmd = ["/usr/bin/protoc", "-I" + PROTO_DIR, "--python_out=" + d, "--grpc_python_out=" + d,
           "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin"] + PROTOS
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        shutil.rmtree(d, ignore_errors=True)
        sys.exit("interop.py: %s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr))
    grpc.__path__.append(os.path.join(d, "grpc"))
    from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc
    return d, empty_pb2, messages_pb2, test_pb2_grpc


def read(path):
    with open(path, "rb") as f:
        return f.read()


def boolean(s):
    v = s.lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError("want true or false, not %r" % s)


# ---- the server -----------------------------------------------------------------


class TestService:
    """grpc.testing.TestService as the spec's "Server" section describes it.
    UnimplementedCall is left out, so the library answers UNIMPLEMENTED."""

    def __init__(self, empty_pb2, messages_pb2):
        self.e = empty_pb2
        self.m = messages_pb2

    def echo_metadata(self, ctx):
        """Echo Metadata: x-grpc-test-echo-initial back in the initial
        metadata, x-grpc-test-echo-trailing-bin in the trailers."""
        initial, trailing = [], []
        for k, v in ctx.invocation_metadata():
            if k == ECHO_INITIAL:
                initial.append((k, v))
            elif k == ECHO_TRAILING:
                trailing.append((k, v))
        if initial:
            ctx.send_initial_metadata(initial)
        if trailing:
            ctx.set_trailing_metadata(trailing)

    def echo_status(self, req, ctx):
        """Echo Status: ends the call with the request's response_status."""
        if req.HasField("response_status") and req.response_status.code != 0:
            ctx.abort(CODES.get(req.response_status.code, grpc.StatusCode.UNKNOWN),
                      req.response_status.message)

    def check_type(self, req, ctx):
        if req.response_type != self.m.COMPRESSABLE:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      "response_type %d not supported" % req.response_type)

    def payload(self, size):
        return self.m.Payload(type=self.m.COMPRESSABLE, body=bytes(size))

    def EmptyCall(self, req, ctx):
        self.echo_metadata(ctx)
        return self.e.Empty()

    def UnaryCall(self, req, ctx):
        self.echo_metadata(ctx)
        self.echo_status(req, ctx)
        self.check_type(req, ctx)
        # expect_compressed cannot be checked here (see the file's comment).
        if req.response_compressed.value:
            ctx.set_compression(grpc.Compression.Gzip)
        else:
            ctx.set_compression(grpc.Compression.NoCompression)
        return self.m.SimpleResponse(payload=self.payload(req.response_size))

    def respond(self, req, ctx):
        """The responses to one StreamingOutputCallRequest, one per
        ResponseParameters, each after its interval_us; compressed or not
        as its `compressed` says (the call compresses if asked; the
        messages that must not be compressed are sent without)."""
        self.echo_status(req, ctx)
        self.check_type(req, ctx)
        for p in req.response_parameters:
            if p.interval_us > 0:
                time.sleep(p.interval_us / 1e6)
            if not p.compressed.value:
                ctx.disable_next_message_compression()
            yield self.m.StreamingOutputCallResponse(payload=self.payload(p.size))

    def any_compressed(self, req):
        return any(p.compressed.value for p in req.response_parameters)

    def StreamingOutputCall(self, req, ctx):
        self.echo_metadata(ctx)
        if self.any_compressed(req):
            ctx.set_compression(grpc.Compression.Gzip)
        yield from self.respond(req, ctx)

    def StreamingInputCall(self, it, ctx):
        self.echo_metadata(ctx)
        n = sum(len(r.payload.body) for r in it)
        return self.m.StreamingInputCallResponse(aggregated_payload_size=n)

    def FullDuplexCall(self, it, ctx):
        self.echo_metadata(ctx)
        for req in it:
            if self.any_compressed(req):
                ctx.set_compression(grpc.Compression.Gzip)
            yield from self.respond(req, ctx)

    def HalfDuplexCall(self, it, ctx):
        self.echo_metadata(ctx)
        reqs = list(it)  # everything up to the half-close, then the answers
        for req in reqs:
            if self.any_compressed(req):
                ctx.set_compression(grpc.Compression.Gzip)
        for req in reqs:
            yield from self.respond(req, ctx)

    def handler(self):
        m, e = self.m, self.e

        def h(kind, fn, req_type, resp_type):
            return kind(fn, request_deserializer=req_type.FromString,
                        response_serializer=resp_type.SerializeToString)

        return grpc.method_handlers_generic_handler(SERVICE, {
            "EmptyCall": h(grpc.unary_unary_rpc_method_handler, self.EmptyCall, e.Empty, e.Empty),
            "UnaryCall": h(grpc.unary_unary_rpc_method_handler, self.UnaryCall,
                           m.SimpleRequest, m.SimpleResponse),
            "StreamingOutputCall": h(grpc.unary_stream_rpc_method_handler,
                                     self.StreamingOutputCall, m.StreamingOutputCallRequest,
                                     m.StreamingOutputCallResponse),
            "StreamingInputCall": h(grpc.stream_unary_rpc_method_handler,
                                    self.StreamingInputCall, m.StreamingInputCallRequest,
                                    m.StreamingInputCallResponse),
            "FullDuplexCall": h(grpc.stream_stream_rpc_method_handler, self.FullDuplexCall,
                                m.StreamingOutputCallRequest, m.StreamingOutputCallResponse),
            "HalfDuplexCall": h(grpc.stream_stream_rpc_method_handler, self.HalfDuplexCall,
                                m.StreamingOutputCallRequest, m.StreamingOutputCallResponse),
        })


def serve(args, empty_pb2, messages_pb2):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # without SO_REUSEPORT (grpcio's default is on): another server asking
    # for this port must fail, not share it
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((TestService(empty_pb2, messages_pb2).handler(),))
    addr = "127.0.0.1:%d" % args.port
    try:
        if args.use_tls:
            if not (args.tls_cert_file and args.tls_key_file):
                sys.exit("interop.py server: --use_tls=true needs --tls_cert_file and "
                         "--tls_key_file")
            creds = grpc.ssl_server_credentials(
                [(read(args.tls_key_file), read(args.tls_cert_file))])
            port = server.add_secure_port(addr, creds)
        else:
            port = server.add_insecure_port(addr)
    except RuntimeError as e:  # grpcio raises when it cannot bind
        sys.exit("interop.py server: cannot listen on %s: %s" % (addr, e))
    if port == 0:
        sys.exit("interop.py server: cannot listen on %s" % addr)
    server.start()
    print("listening", port, flush=True)
    while not stop.wait(1):
        pass
    server.stop(0).wait()


# ---- the client -----------------------------------------------------------------


class Failure(Exception):
    pass


def expect(cond, what, *args):
    if not cond:
        raise Failure(what % args if args else what)


def expect_error(fn, code, details=None):
    """Runs fn, which must fail with code (and details, if not None)."""
    try:
        fn()
    except grpc.RpcError as e:
        expect(e.code() == code, "status %s, want %s (%r)", e.code(), code, e.details())
        if details is not None:
            expect(e.details() == details, "message %r, want %r", e.details(), details)
        return
    raise Failure("succeeded, want %s" % code)


class Feeder:
    """A request iterator the test writes to as it goes (for ping-pong and
    cancellation): put() sends a message, close() half-closes."""

    def __init__(self):
        self.q = queue.Queue()

    def __iter__(self):
        return self

    def __next__(self):
        item = self.q.get()
        if item is None:
            raise StopIteration
        return item

    def put(self, m):
        self.q.put(m)

    def close(self):
        self.q.put(None)


class Client:
    """The spec's client test cases, each a method named after its case;
    each returns on success and raises on failure."""

    def __init__(self, channel, empty_pb2, messages_pb2, test_pb2_grpc):
        self.e = empty_pb2
        self.m = messages_pb2
        self.stub = test_pb2_grpc.TestServiceStub(channel)
        self.unimpl = test_pb2_grpc.UnimplementedServiceStub(channel)

    def payload(self, size):
        return self.m.Payload(body=bytes(size))

    def check_payload(self, p, size):
        expect(p.type == self.m.COMPRESSABLE, "payload type %d", p.type)
        expect(len(p.body) == size, "payload of %d bytes, want %d", len(p.body), size)
        expect(p.body == bytes(size), "payload is not all zeros")

    def large_request(self, **kw):
        return self.m.SimpleRequest(response_size=314159, payload=self.payload(271828), **kw)

    def output_request(self, sizes, payload=None, compressed=None):
        params = [self.m.ResponseParameters(size=s) for s in sizes]
        for p, c in zip(params, compressed or []):
            p.compressed.value = c
        return self.m.StreamingOutputCallRequest(
            response_parameters=params,
            payload=self.payload(payload) if payload is not None else None)

    def empty_unary(self):
        r = self.stub.EmptyCall(self.e.Empty(), timeout=TIMEOUT)
        expect(isinstance(r, self.e.Empty), "response %r", r)

    def large_unary(self):
        r = self.stub.UnaryCall(self.large_request(), timeout=TIMEOUT)
        self.check_payload(r.payload, 314159)

    def client_compressed_unary(self):
        yes = self.m.BoolValue(value=True)
        no = self.m.BoolValue(value=False)
        # the probe: uncompressed, expect_compressed true
        expect_error(lambda: self.stub.UnaryCall(self.large_request(expect_compressed=yes),
                                                 timeout=TIMEOUT),
                     grpc.StatusCode.INVALID_ARGUMENT)
        r = self.stub.UnaryCall(self.large_request(expect_compressed=yes), timeout=TIMEOUT,
                                compression=grpc.Compression.Gzip)
        self.check_payload(r.payload, 314159)
        r = self.stub.UnaryCall(self.large_request(expect_compressed=no), timeout=TIMEOUT)
        self.check_payload(r.payload, 314159)

    def server_compressed_unary(self):
        # python cannot see the response's compressed flag: sizes only
        for c in (True, False):
            req = self.large_request(response_compressed=self.m.BoolValue(value=c))
            r = self.stub.UnaryCall(req, timeout=TIMEOUT)
            self.check_payload(r.payload, 314159)

    def client_streaming(self):
        reqs = [self.m.StreamingInputCallRequest(payload=self.payload(n))
                for n in (27182, 8, 1828, 45904)]
        r = self.stub.StreamingInputCall(iter(reqs), timeout=TIMEOUT)
        expect(r.aggregated_payload_size == 74922, "aggregated_payload_size %d",
               r.aggregated_payload_size)

    def client_compressed_streaming(self):
        def req(n, c):
            return self.m.StreamingInputCallRequest(
                payload=self.payload(n), expect_compressed=self.m.BoolValue(value=c))
        # the probe: uncompressed, expect_compressed true
        expect_error(lambda: self.stub.StreamingInputCall(iter([req(27182, True)]),
                                                          timeout=TIMEOUT),
                     grpc.StatusCode.INVALID_ARGUMENT)
        # The spec's second message is uncompressed with expect_compressed
        # false; python compresses all of a call's messages or none, so it
        # goes compressed, and says so: expect_compressed true (a server
        # like gRPC's C++ one rejects a compressed message marked false).
        r = self.stub.StreamingInputCall(iter([req(27182, True), req(45904, True)]),
                                         timeout=TIMEOUT, compression=grpc.Compression.Gzip)
        expect(r.aggregated_payload_size == 73086, "aggregated_payload_size %d",
               r.aggregated_payload_size)

    def check_stream(self, responses, sizes):
        got = [len(r.payload.body) for r in responses]
        expect(got == sizes, "responses of %s bytes, want %s", got, sizes)
        for r, s in zip(responses, sizes):
            self.check_payload(r.payload, s)

    def server_streaming(self):
        sizes = [31415, 9, 2653, 58979]
        call = self.stub.StreamingOutputCall(self.output_request(sizes), timeout=TIMEOUT)
        self.check_stream(list(call), sizes)
        expect(call.code() == grpc.StatusCode.OK, "status %s", call.code())

    def server_compressed_streaming(self):
        # python cannot see the responses' compressed flags: sizes only
        sizes = [31415, 92653]
        req = self.output_request(sizes, compressed=[True, False])
        call = self.stub.StreamingOutputCall(req, timeout=TIMEOUT)
        self.check_stream(list(call), sizes)
        expect(call.code() == grpc.StatusCode.OK, "status %s", call.code())

    def ping_pong(self):
        f = Feeder()
        call = self.stub.FullDuplexCall(f, timeout=TIMEOUT)
        try:
            for size, body in ((31415, 27182), (9, 8), (2653, 1828), (58979, 45904)):
                f.put(self.output_request([size], payload=body))
                r = next(call)
                self.check_payload(r.payload, size)
            f.close()
            rest = list(call)
            expect(not rest, "%d responses after the half-close", len(rest))
            expect(call.code() == grpc.StatusCode.OK, "status %s", call.code())
        finally:
            f.close()

    def empty_stream(self):
        call = self.stub.FullDuplexCall(iter([]), timeout=TIMEOUT)
        got = list(call)
        expect(not got, "%d responses, want none", len(got))
        expect(call.code() == grpc.StatusCode.OK, "status %s", call.code())

    def timeout_on_sleeping_server(self):
        # one request, no half-close, a 1 ms deadline; the generator waits
        # (without half-closing) until the call is over
        done = threading.Event()

        def reqs():
            yield self.m.StreamingOutputCallRequest(payload=self.payload(27182))
            done.wait(TIMEOUT)

        try:
            call = self.stub.FullDuplexCall(reqs(), timeout=0.001)
            expect_error(lambda: list(call), grpc.StatusCode.DEADLINE_EXCEEDED)
        finally:
            done.set()

    def cancel_after_begin(self):
        f = Feeder()
        try:
            fut = self.stub.StreamingInputCall.future(f, timeout=TIMEOUT)
            fut.cancel()
            expect(fut.code() == grpc.StatusCode.CANCELLED, "status %s", fut.code())
        finally:
            f.close()

    def cancel_after_first_response(self):
        f = Feeder()
        call = self.stub.FullDuplexCall(f, timeout=TIMEOUT)
        try:
            f.put(self.output_request([31415], payload=27182))
            r = next(call)
            self.check_payload(r.payload, 31415)
            call.cancel()
            expect(call.code() == grpc.StatusCode.CANCELLED, "status %s", call.code())
        finally:
            f.close()

    def check_echoed(self, call):
        initial = [(k, v) for k, v in call.initial_metadata() if k == ECHO_INITIAL]
        trailing = [(k, v) for k, v in call.trailing_metadata() if k == ECHO_TRAILING]
        expect(initial == [(ECHO_INITIAL, "test_initial_metadata_value")],
               "initial metadata %r", call.initial_metadata())
        expect(trailing == [(ECHO_TRAILING, b"\xab\xab\xab")],
               "trailing metadata %r", call.trailing_metadata())

    def custom_metadata(self):
        md = ((ECHO_INITIAL, "test_initial_metadata_value"), (ECHO_TRAILING, b"\xab\xab\xab"))
        r, call = self.stub.UnaryCall.with_call(self.large_request(), metadata=md,
                                                timeout=TIMEOUT)
        self.check_payload(r.payload, 314159)
        self.check_echoed(call)
        req = self.output_request([314159], payload=271828)
        call = self.stub.FullDuplexCall(iter([req]), metadata=md, timeout=TIMEOUT)
        self.check_stream(list(call), [314159])
        expect(call.code() == grpc.StatusCode.OK, "status %s", call.code())
        self.check_echoed(call)

    def echo_status(self, message, duplex):
        st = self.m.EchoStatus(code=2, message=message)
        expect_error(lambda: self.stub.UnaryCall(self.m.SimpleRequest(response_status=st),
                                                 timeout=TIMEOUT),
                     grpc.StatusCode.UNKNOWN, message)
        if duplex:
            req = self.m.StreamingOutputCallRequest(response_status=st)
            expect_error(lambda: list(self.stub.FullDuplexCall(iter([req]), timeout=TIMEOUT)),
                         grpc.StatusCode.UNKNOWN, message)

    def status_code_and_message(self):
        self.echo_status("test status message", True)

    def special_status_message(self):
        self.echo_status(SPECIAL_MSG, False)

    def unimplemented_method(self):
        expect_error(lambda: self.stub.UnimplementedCall(self.e.Empty(), timeout=TIMEOUT),
                     grpc.StatusCode.UNIMPLEMENTED)

    def unimplemented_service(self):
        expect_error(lambda: self.unimpl.UnimplementedCall(self.e.Empty(), timeout=TIMEOUT),
                     grpc.StatusCode.UNIMPLEMENTED)


def client(args, empty_pb2, messages_pb2, test_pb2_grpc):
    names = CASES if args.test_case == "all" else args.test_case.split(",")
    unknown = [n for n in names if n not in CASES]
    if unknown:
        sys.exit("interop.py client: unknown test case %s" % ", ".join(unknown))
    target = "%s:%d" % (args.server_host, args.server_port)
    opts = []
    if args.use_tls:
        if args.server_host_override:
            opts.append(("grpc.ssl_target_name_override", args.server_host_override))
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(args.ca_file) if args.ca_file else None)
        ch = grpc.secure_channel(target, creds, options=opts)
    else:
        if args.server_host_override:
            opts.append(("grpc.default_authority", args.server_host_override))
        ch = grpc.insecure_channel(target, options=opts)
    c = Client(ch, empty_pb2, messages_pb2, test_pb2_grpc)
    failed = 0
    for name in names:
        try:
            getattr(c, name)()
            print("ok", name, flush=True)
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (name, e), flush=True)
        except grpc.RpcError as e:
            failed += 1
            print("FAIL %s: status %s: %r" % (name, e.code(), e.details()), flush=True)
        except Exception as e:  # report every case, then fail at the end
            failed += 1
            print("FAIL %s: %r" % (name, e), flush=True)
    ch.close()
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description="gRPC interop test peer (python3-grpcio)")
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--use_tls", type=boolean, default=False)
    s.add_argument("--tls_cert_file")
    s.add_argument("--tls_key_file")
    c = sub.add_parser("client")
    c.add_argument("--server_host", default="127.0.0.1")
    c.add_argument("--server_port", type=int, required=True)
    c.add_argument("--test_case", required=True)
    c.add_argument("--use_tls", type=boolean, default=False)
    c.add_argument("--ca_file")
    c.add_argument("--server_host_override")
    args = ap.parse_args()
    d, empty_pb2, messages_pb2, test_pb2_grpc = generate_stubs()
    try:
        if args.mode == "server":
            serve(args, empty_pb2, messages_pb2)
            return 0
        return client(args, empty_pb2, messages_pb2, test_pb2_grpc)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
