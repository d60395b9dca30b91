#!/usr/bin/python3
"""Backends (and a client) for argot mesh's integration tests
(tests/integration/mesh_test.c), from Debian's python3-grpcio and python's
http.server. Every backend answers with its own name, so a test can tell
which endpoint the mesh chose.

  mesh_backend.py grpc --name NAME [--port N] [--unavailable]
      serve the methods below on 127.0.0.1:N (0: any free port; no
      SO_REUSEPORT), print "listening PORT" once serving; exit 0 on SIGTERM.
      Messages are raw bytes (no protobuf), so any client can call them:
        /mesh.Test/Who       unary: answers NAME
        /mesh.Test/Echo      unary: answers the request
        /mesh.Test/Sleep     unary: the request is a number of ms; sleeps
                             that long (ending early if the call is
                             cancelled), then answers NAME
        /mesh.Test/Deadline  unary: answers the ms left before the call's
                             deadline as the server saw it (grpc-timeout),
                             "none" without one
        /mesh.Test/Tick      server streaming: the request is "N,MS"; N
                             messages "NAME I", one every MS ms
        /mesh.Test/Flood     server streaming: the request is a number of
                             MiB; that many messages of 1 MiB each
      Any other method: UNIMPLEMENTED (grpcio's answer). With --unavailable,
      every call ends at once with UNAVAILABLE "NAME is unavailable" (a
      trailers-only response) and nothing else.

  mesh_backend.py http --name NAME [--port N] [--status CODE]
      an HTTP/1.1 server (keep-alive, Content-Length): GET PATH answers 200
      "NAME GET PATH"; POST answers 200 "NAME POST " + the body; a request
      header x-status: CODE makes it answer CODE instead, and so does every
      request with --status CODE; x-sleep-ms: MS makes it wait that long
      first. Prints "listening PORT".

  mesh_backend.py client --port N --authority A --method M [--data S]
                         [--timeout SECONDS]
      one unary call through 127.0.0.1:N with :authority A; prints
      "status CODE_NUMBER" and then "response TEXT" or "details TEXT".
"""
import argparse
import http.server
import signal
import sys
import threading
import time
from concurrent import futures

import grpc


def serve_grpc(args):
    name = args.name.encode()

    def who(req, ctx):
        return name

    def unavailable(req, ctx):
        ctx.abort(grpc.StatusCode.UNAVAILABLE, "%s is unavailable" % args.name)

    def echo(req, ctx):
        return req

    def sleep(req, ctx):
        end = time.monotonic() + int(req or b"0") / 1000.0
        while time.monotonic() < end and ctx.is_active():
            time.sleep(0.01)
        return name

    def deadline(req, ctx):
        left = ctx.time_remaining()
        if left is None:
            return b"none"
        return str(int(left * 1000)).encode()

    def tick(req, ctx):
        n, ms = (int(x) for x in req.decode().split(","))
        for i in range(n):
            if i:
                time.sleep(ms / 1000.0)
            yield b"%s %d" % (name, i)

    def flood(req, ctx):
        chunk = b"x" * (1 << 20)
        for _ in range(int(req or b"0")):
            if not ctx.is_active():
                return
            yield chunk

    methods = {
        "Who": grpc.unary_unary_rpc_method_handler(who),
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Sleep": grpc.unary_unary_rpc_method_handler(sleep),
        "Deadline": grpc.unary_unary_rpc_method_handler(deadline),
        "Tick": grpc.unary_stream_rpc_method_handler(tick),
        "Flood": grpc.unary_stream_rpc_method_handler(flood),
    }
    if args.unavailable:
        methods = {m: grpc.unary_unary_rpc_method_handler(unavailable) for m in methods}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                         options=[("grpc.so_reuseport", 0),
                                  ("grpc.max_send_message_length", 64 << 20),
                                  ("grpc.max_receive_message_length", 64 << 20)])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("mesh.Test", methods),))
    port = server.add_insecure_port("127.0.0.1:%d" % args.port)
    if port == 0:
        sys.exit("mesh_backend.py: cannot listen on 127.0.0.1:%d" % args.port)
    server.start()
    print("listening", port, flush=True)
    while not stop.wait(1):
        pass
    server.stop(0).wait()


def serve_http(args):
    name = args.name

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, text):
            time.sleep(int(self.headers.get("x-sleep-ms", "0")) / 1000.0)
            code = int(self.headers.get("x-status", args.status))
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Backend", name)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            self.answer("%s GET %s" % (name, self.path))

        def do_HEAD(self):
            self.answer("")

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n).decode("latin-1")
            self.answer("%s POST %s" % (name, body))

        def log_message(self, fmt, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    print("listening", srv.server_address[1], flush=True)
    srv.serve_forever()


def client(args):
    ch = grpc.insecure_channel("127.0.0.1:%d" % args.port,
                               options=[("grpc.default_authority", args.authority)])
    call = ch.unary_unary(args.method)
    try:
        resp = call(args.data.encode(), timeout=args.timeout)
        print("status 0", flush=True)
        print("response", resp.decode("latin-1"), flush=True)
    except grpc.RpcError as e:
        print("status", e.code().value[0], flush=True)
        print("details", e.details(), flush=True)
    ch.close()
    return 0


def main():
    ap = argparse.ArgumentParser(description="argot mesh test backends")
    sub = ap.add_subparsers(dest="mode", required=True)
    for m in ("grpc", "http"):
        s = sub.add_parser(m)
        s.add_argument("--name", required=True)
        s.add_argument("--port", type=int, default=0)
        s.add_argument("--status", type=int, default=200)
        s.add_argument("--unavailable", action="store_true")
    c = sub.add_parser("client")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--authority", required=True)
    c.add_argument("--method", required=True)
    c.add_argument("--data", default="")
    c.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    if args.mode == "grpc":
        serve_grpc(args)
    elif args.mode == "http":
        serve_http(args)
    else:
        return client(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
