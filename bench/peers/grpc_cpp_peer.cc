// grpc_cpp_peer: gRPC C++ (grpc++ sync API, Debian's libgrpc++-dev) doing
// what bench/rpc.c does with argot, for bench/rpc to time side by side.
// Built by `make bench` / `make bench-bins` only (never by `make test`),
// from proto/argot/bench/v1/bench.proto, generated at build time.
//
//   grpc_cpp_peer server
//       serves argot.bench.v1.Bench on 127.0.0.1 (a free port), prints
//       "port N", and runs until its stdin reaches EOF.
//   grpc_cpp_peer client TARGET SIZE WARMUP TRIPS SECS
//       unary and streaming ping-pong round trips with SIZE-byte payloads
//       (WARMUP untimed, then TRIPS timed, one in flight), then 1 KiB and
//       1 MiB messages streamed client -> server on Sink for SECS seconds
//       each; prints "key value" lines (unary_p50_us, unary_p99_us,
//       pp_p50_us, pp_p99_us, stream_msgs_s, bw_mb_s).
//   grpc_cpp_peer mem TARGET SERVER_PID N
//       the server's and its own resident memory (VmRSS) after one warm-up
//       channel, after N more channels (each made one unary call, then
//       idle), and after N PingPong streams in flight on the first channel
//       (each sent one message and got it back); prints srv_conn_kib,
//       srv_call_kib, cli_conn_kib, cli_call_kib and the sockets the server
//       gained (srv_sockets).
//
// Each channel of `mem` has its own connection (a local subchannel pool).
// Every echo and every Sink count is checked; on a failure the peer prints
// "error WHAT" and exits 1.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "argot/bench/v1/bench.grpc.pb.h"

using argot::bench::v1::Bench;
using argot::bench::v1::Msg;

namespace {

double now_us()
{
    using namespace std::chrono;
    return duration<double, std::micro>(steady_clock::now().time_since_epoch()).count();
}

[[noreturn]] void fail(const std::string &what)
{
    std::printf("error %s\n", what.c_str());
    std::fflush(stdout);
    std::exit(1);
}

// The same payload bytes as bench/rpc.c: byte i is (i * 131 + 7) & 0xff.
std::string payload(size_t n)
{
    std::string s(n, '\0');
    for (size_t i = 0; i < n; i++)
        s[i] = static_cast<char>((i * 131 + 7) & 0xff);
    return s;
}

// Nearest rank: the smallest value with at least p% of them at or below it.
double percentile(std::vector<double> v, double p)
{
    if (v.empty())
        return NAN;
    std::sort(v.begin(), v.end());
    size_t k = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    return v[k ? k - 1 : 0];
}

// ---- server -------------------------------------------------------------------

class BenchService final : public Bench::Service {
    grpc::Status Unary(grpc::ServerContext *, const Msg *req, Msg *resp) override
    {
        *resp = *req;
        return grpc::Status::OK;
    }

    grpc::Status PingPong(grpc::ServerContext *, grpc::ServerReaderWriter<Msg, Msg> *s) override
    {
        Msg m;
        while (s->Read(&m))
            if (!s->Write(m))
                break;
        return grpc::Status::OK;
    }

    grpc::Status Sink(grpc::ServerContext *, grpc::ServerReader<Msg> *r, Msg *resp) override
    {
        Msg m;
        unsigned long long n = 0, bytes = 0;
        while (r->Read(&m)) {
            n++;
            bytes += m.payload().size();
        }
        resp->set_payload(std::to_string(n) + " " + std::to_string(bytes));
        return grpc::Status::OK;
    }
};

int serve()
{
    BenchService svc;
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&svc);
    std::unique_ptr<grpc::Server> server = b.BuildAndStart();
    if (!server || port == 0)
        fail("cannot start the server");
    std::printf("port %d\n", port);
    std::fflush(stdout);
    char buf[256];
    while (read(0, buf, sizeof(buf)) > 0) {
    }
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    return 0;
}

// ---- client -------------------------------------------------------------------

std::vector<double> unary_trips(Bench::Stub &stub, const Msg &req, int warm, int trips)
{
    std::vector<double> us;
    us.reserve(static_cast<size_t>(trips));
    Msg resp;
    for (int i = 0; i < warm + trips; i++) {
        double t0 = now_us();
        grpc::ClientContext ctx;
        grpc::Status st = stub.Unary(&ctx, req, &resp);
        double t1 = now_us();
        if (!st.ok())
            fail("Unary: " + st.error_message());
        if (resp.payload() != req.payload())
            fail("Unary: the echo differs");
        if (i >= warm)
            us.push_back(t1 - t0);
    }
    return us;
}

std::vector<double> pingpong_trips(Bench::Stub &stub, const Msg &req, int warm, int trips)
{
    std::vector<double> us;
    us.reserve(static_cast<size_t>(trips));
    grpc::ClientContext ctx;
    auto s = stub.PingPong(&ctx);
    Msg resp;
    for (int i = 0; i < warm + trips; i++) {
        double t0 = now_us();
        if (!s->Write(req) || !s->Read(&resp))
            fail("PingPong: the stream broke: " + s->Finish().error_message());
        double t1 = now_us();
        if (resp.payload() != req.payload())
            fail("PingPong: the echo differs");
        if (i >= warm)
            us.push_back(t1 - t0);
    }
    s->WritesDone();
    grpc::Status st = s->Finish();
    if (!st.ok())
        fail("PingPong: " + st.error_message());
    return us;
}

// Streams SIZE-byte messages for secs seconds; returns messages per second,
// from before the first write to the server's answer.
double sink(Bench::Stub &stub, size_t size, double secs)
{
    Msg m, resp;
    m.set_payload(payload(size));
    grpc::ClientContext ctx;
    auto w = stub.Sink(&ctx, &resp);
    unsigned long long n = 0;
    double t0 = now_us(), end = t0 + secs * 1e6;
    while (now_us() < end) {
        if (!w->Write(m))
            fail("Sink: the stream broke");
        n++;
    }
    w->WritesDone();
    grpc::Status st = w->Finish();
    double t1 = now_us();
    if (!st.ok())
        fail("Sink: " + st.error_message());
    std::string want = std::to_string(n) + " " + std::to_string(n * size);
    if (resp.payload() != want)
        fail("Sink: the server counted \"" + resp.payload() + "\", sent " + want);
    return static_cast<double>(n) / ((t1 - t0) / 1e6);
}

int client(const char *target, size_t size, int warm, int trips, double secs)
{
    auto ch = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
    auto stub = Bench::NewStub(ch);
    Msg req;
    req.set_payload(payload(size));
    std::vector<double> u = unary_trips(*stub, req, warm, trips);
    std::printf("unary_p50_us %.2f\nunary_p99_us %.2f\n", percentile(u, 50), percentile(u, 99));
    std::vector<double> p = pingpong_trips(*stub, req, warm, trips);
    std::printf("pp_p50_us %.2f\npp_p99_us %.2f\n", percentile(p, 50), percentile(p, 99));
    std::fflush(stdout);
    sink(*stub, 1024, 0.2); // warm-up
    std::printf("stream_msgs_s %.1f\n", sink(*stub, 1024, secs));
    std::fflush(stdout);
    sink(*stub, 1u << 20, 0.2);
    std::printf("bw_mb_s %.2f\n", sink(*stub, 1u << 20, secs) * (1u << 20) / 1e6);
    return 0;
}

// ---- memory -------------------------------------------------------------------

// VmRSS of /proc/PID/status in KiB (-1 if unreadable).
long rss_kib(const std::string &pid)
{
    FILE *f = std::fopen(("/proc/" + pid + "/status").c_str(), "r");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (std::fgets(line, sizeof(line), f))
        if (std::strncmp(line, "VmRSS:", 6) == 0)
            kib = std::strtol(line + 6, nullptr, 10);
    std::fclose(f);
    return kib;
}

int sockets(const std::string &pid)
{
    std::string dir = "/proc/" + pid + "/fd";
    DIR *d = opendir(dir.c_str());
    if (!d)
        return -1;
    int n = 0;
    while (struct dirent *e = readdir(d)) {
        char link[64];
        ssize_t len = readlink((dir + "/" + e->d_name).c_str(), link, sizeof(link) - 1);
        if (len > 0) {
            link[len] = '\0';
            n += std::strncmp(link, "socket:", 7) == 0;
        }
    }
    closedir(d);
    return n;
}

void settle()
{
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
}

int mem(const char *target, const std::string &spid, int n)
{
    const std::string self = "self";
    Msg req, resp;
    req.set_payload(payload(64));
    auto channel = [&]() {
        grpc::ChannelArguments args;
        args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1); // a connection of its own
        return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    };
    auto unary = [&](Bench::Stub &stub) {
        grpc::ClientContext ctx;
        grpc::Status st = stub.Unary(&ctx, req, &resp);
        if (!st.ok() || resp.payload() != req.payload())
            fail("mem: Unary: " + st.error_message());
    };
    auto ch0 = channel();
    auto stub0 = Bench::NewStub(ch0);
    unary(*stub0);
    settle();
    long s0 = rss_kib(spid), c0 = rss_kib(self);
    int k0 = sockets(spid);
    std::vector<std::shared_ptr<grpc::Channel>> chans;
    std::vector<std::unique_ptr<Bench::Stub>> stubs;
    for (int i = 0; i < n; i++) {
        chans.push_back(channel());
        stubs.push_back(Bench::NewStub(chans.back()));
        unary(*stubs.back());
    }
    settle();
    long s1 = rss_kib(spid), c1 = rss_kib(self);
    int k1 = sockets(spid);
    std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
    std::vector<std::unique_ptr<grpc::ClientReaderWriter<Msg, Msg>>> streams;
    for (int i = 0; i < n; i++) {
        ctxs.push_back(std::make_unique<grpc::ClientContext>());
        streams.push_back(stub0->PingPong(ctxs.back().get()));
        if (!streams.back()->Write(req) || !streams.back()->Read(&resp) ||
            resp.payload() != req.payload())
            fail("mem: PingPong: the stream broke");
    }
    settle();
    long s2 = rss_kib(spid), c2 = rss_kib(self);
    if (s0 < 0 || s1 < 0 || s2 < 0)
        fail("mem: cannot read /proc/" + spid + "/status");
    std::printf("srv_conn_kib %.2f\nsrv_call_kib %.2f\ncli_conn_kib %.2f\ncli_call_kib %.2f\n"
                "srv_sockets %d\n",
                double(s1 - s0) / n, double(s2 - s1) / n, double(c1 - c0) / n,
                double(c2 - c1) / n, k1 - k0);
    std::fflush(stdout);
    for (auto &s : streams) {
        s->WritesDone();
        s->Finish();
    }
    return 0;
}

int usage()
{
    std::fprintf(stderr, "usage: grpc_cpp_peer server\n"
                         "       grpc_cpp_peer client TARGET SIZE WARMUP TRIPS SECS\n"
                         "       grpc_cpp_peer mem TARGET SERVER_PID N\n");
    return 2;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc == 2 && std::strcmp(argv[1], "server") == 0)
        return serve();
    if (argc == 7 && std::strcmp(argv[1], "client") == 0) {
        long size = std::atol(argv[3]), warm = std::atol(argv[4]), trips = std::atol(argv[5]);
        double secs = std::atof(argv[6]);
        if (size < 0 || size > (1 << 20) || warm < 0 || trips < 1 || trips > 10000000 ||
            !(secs > 0))
            return usage();
        return client(argv[2], size_t(size), int(warm), int(trips), secs);
    }
    if (argc == 5 && std::strcmp(argv[1], "mem") == 0) {
        int n = std::atoi(argv[4]);
        if (n < 1 || n > 10000)
            return usage();
        return mem(argv[2], argv[3], n);
    }
    return usage();
}
