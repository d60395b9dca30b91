// An interop test client for grpc.testing.TestService, written for argot's
// tests against grpc-go (Debian's golang-google-grpc-dev, 1.33): Debian's
// package ships grpc-go's library but not its interop/ programs, so this
// implements the client side of gRPC's interop test descriptions
// (doc/interop-test-descriptions.md in grpc/grpc) on that library, with the
// flags of grpc-go's interop client:
//
//	--server_host=H --server_port=N --test_case=CASE[,CASE..|all]
//	[--use_tls=true --ca_file=F --server_host_override=NAME]
//
// It prints "ok CASE" or "FAIL CASE: why" per case and exits 0 iff all
// passed.
//
// Where grpc-go 1.33 falls short of the descriptions, and what is done:
//   - it has no API for a message's compressed flag: a stats handler
//     compares each response's length on the wire with its decoded length;
//   - it advertises grpc-accept-encoding only when it compresses its own
//     request: the server_compressed_* cases send "grpc-accept-encoding:
//     gzip" as metadata (not a reserved header in grpc-go);
//   - it cannot compress some messages of a stream and not others:
//     client_compressed_streaming sends both messages of its second call
//     compressed (the server checks only those with expect_compressed).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	testpb "argotpeer/testpb"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

var (
	serverHost   = flag.String("server_host", "localhost", "the server's host")
	serverPort   = flag.Int("server_port", 10000, "the server's port")
	testCase     = flag.String("test_case", "large_unary", "CASE[,CASE..] or all")
	useTLS       = flag.Bool("use_tls", false, "connect over TLS")
	caFile       = flag.String("ca_file", "", "the CA certificates to trust (PEM)")
	hostOverride = flag.String("server_host_override", "", "the name the server's certificate must carry")
)

var allCases = []string{
	"empty_unary", "large_unary", "client_compressed_unary", "server_compressed_unary",
	"client_streaming", "client_compressed_streaming", "server_streaming",
	"server_compressed_streaming", "ping_pong", "empty_stream",
	"timeout_on_sleeping_server", "cancel_after_begin", "cancel_after_first_response",
	"custom_metadata", "status_code_and_message", "special_status_message",
	"unimplemented_method", "unimplemented_service",
}

// ---- were the received messages compressed? -------------------------------

type recvLog struct {
	mu         sync.Mutex
	compressed []bool
}

type recvLogKey struct{}

type compressionSpy struct{}

func (compressionSpy) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return ctx
}

func (compressionSpy) HandleRPC(ctx context.Context, s stats.RPCStats) {
	in, ok := s.(*stats.InPayload)
	if !ok {
		return
	}
	if l, ok := ctx.Value(recvLogKey{}).(*recvLog); ok {
		l.mu.Lock()
		l.compressed = append(l.compressed, in.WireLength != in.Length+5)
		l.mu.Unlock()
	}
}

func (compressionSpy) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}

func (compressionSpy) HandleConn(context.Context, stats.ConnStats) {}

func withRecvLog(ctx context.Context) (context.Context, *recvLog) {
	l := &recvLog{}
	return context.WithValue(ctx, recvLogKey{}, l), l
}

func (l *recvLog) get(i int) (bool, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i >= len(l.compressed) {
		return false, false
	}
	return l.compressed[i], true
}

// ---- helpers ---------------------------------------------------------------

func pl(size int) *testpb.Payload {
	return &testpb.Payload{Type: testpb.PayloadType_COMPRESSABLE, Body: make([]byte, size)}
}

func boolv(b bool) *testpb.BoolValue { return &testpb.BoolValue{Value: b} }

func checkPayload(p *testpb.Payload, size int) error {
	if p == nil {
		if size == 0 {
			return nil
		}
		return fmt.Errorf("no payload, want %d bytes", size)
	}
	if p.Type != testpb.PayloadType_COMPRESSABLE {
		return fmt.Errorf("payload type %v", p.Type)
	}
	if len(p.Body) != size {
		return fmt.Errorf("payload of %d bytes, want %d", len(p.Body), size)
	}
	if !bytes.Equal(p.Body, make([]byte, size)) {
		return fmt.Errorf("payload of %d bytes is not all zeros", size)
	}
	return nil
}

func wantCode(err error, c codes.Code, what string) error {
	if got := status.Code(err); got != c {
		return fmt.Errorf("%s: status %v (%v), want %v", what, got, err, c)
	}
	return nil
}

func ctxT(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// ---- the cases ------------------------------------------------------------

type env struct {
	tc testpb.TestServiceClient
	uc testpb.UnimplementedServiceClient
}

func emptyUnary(e env) error {
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	r, err := e.tc.EmptyCall(ctx, &testpb.Empty{})
	if err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("no response")
	}
	return nil
}

func largeUnary(e env) error {
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	r, err := e.tc.UnaryCall(ctx, &testpb.SimpleRequest{
		ResponseType: testpb.PayloadType_COMPRESSABLE, ResponseSize: 314159, Payload: pl(271828)})
	if err != nil {
		return err
	}
	return checkPayload(r.Payload, 314159)
}

func clientCompressedUnary(e env) error {
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	req := &testpb.SimpleRequest{ResponseType: testpb.PayloadType_COMPRESSABLE,
		ResponseSize: 314159, Payload: pl(271828), ExpectCompressed: boolv(true)}
	// the probe: not compressed, but says it is
	_, err := e.tc.UnaryCall(ctx, req)
	if err := wantCode(err, codes.InvalidArgument, "the probe"); err != nil {
		return err
	}
	r, err := e.tc.UnaryCall(ctx, req, grpc.UseCompressor(gzip.Name))
	if err != nil {
		return fmt.Errorf("compressed: %v", err)
	}
	if err := checkPayload(r.Payload, 314159); err != nil {
		return fmt.Errorf("compressed: %v", err)
	}
	req.ExpectCompressed = boolv(false)
	r, err = e.tc.UnaryCall(ctx, req)
	if err != nil {
		return fmt.Errorf("uncompressed: %v", err)
	}
	return checkPayload(r.Payload, 314159)
}

func serverCompressedUnary(e env) error {
	for _, want := range []bool{true, false} {
		ctx, cancel := ctxT(20 * time.Second)
		ctx = metadata.AppendToOutgoingContext(ctx, "grpc-accept-encoding", "gzip")
		ctx, l := withRecvLog(ctx)
		r, err := e.tc.UnaryCall(ctx, &testpb.SimpleRequest{
			ResponseType: testpb.PayloadType_COMPRESSABLE, ResponseSize: 314159,
			Payload: pl(271828), ResponseCompressed: boolv(want)})
		cancel()
		if err != nil {
			return fmt.Errorf("response_compressed=%v: %v", want, err)
		}
		if err := checkPayload(r.Payload, 314159); err != nil {
			return fmt.Errorf("response_compressed=%v: %v", want, err)
		}
		if got, ok := l.get(0); !ok || got != want {
			return fmt.Errorf("response_compressed=%v: the response was compressed=%v", want, got)
		}
	}
	return nil
}

func clientStreaming(e env) error {
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	s, err := e.tc.StreamingInputCall(ctx)
	if err != nil {
		return err
	}
	for _, n := range []int{27182, 8, 1828, 45904} {
		if err := s.Send(&testpb.StreamingInputCallRequest{Payload: pl(n)}); err != nil {
			return fmt.Errorf("send %d: %v", n, err)
		}
	}
	r, err := s.CloseAndRecv()
	if err != nil {
		return err
	}
	if r.AggregatedPayloadSize != 74922 {
		return fmt.Errorf("aggregated_payload_size %d, want 74922", r.AggregatedPayloadSize)
	}
	return nil
}

func clientCompressedStreaming(e env) error {
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	// the probe: not compressed, but says it is
	s, err := e.tc.StreamingInputCall(ctx)
	if err != nil {
		return err
	}
	if err := s.Send(&testpb.StreamingInputCallRequest{Payload: pl(27182),
		ExpectCompressed: boolv(true)}); err != nil && err != io.EOF {
		return fmt.Errorf("the probe: send: %v", err)
	}
	_, err = s.CloseAndRecv()
	if err := wantCode(err, codes.InvalidArgument, "the probe"); err != nil {
		return err
	}
	s, err = e.tc.StreamingInputCall(ctx, grpc.UseCompressor(gzip.Name))
	if err != nil {
		return err
	}
	if err := s.Send(&testpb.StreamingInputCallRequest{Payload: pl(27182),
		ExpectCompressed: boolv(true)}); err != nil {
		return fmt.Errorf("send 1: %v", err)
	}
	if err := s.Send(&testpb.StreamingInputCallRequest{Payload: pl(45904),
		ExpectCompressed: boolv(false)}); err != nil {
		return fmt.Errorf("send 2: %v", err)
	}
	r, err := s.CloseAndRecv()
	if err != nil {
		return err
	}
	if r.AggregatedPayloadSize != 73086 {
		return fmt.Errorf("aggregated_payload_size %d, want 73086", r.AggregatedPayloadSize)
	}
	return nil
}

func serverStreaming(e env) error {
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	sizes := []int{31415, 9, 2653, 58979}
	req := &testpb.StreamingOutputCallRequest{ResponseType: testpb.PayloadType_COMPRESSABLE}
	for _, n := range sizes {
		req.ResponseParameters = append(req.ResponseParameters,
			&testpb.ResponseParameters{Size: int32(n)})
	}
	s, err := e.tc.StreamingOutputCall(ctx, req)
	if err != nil {
		return err
	}
	for i, n := range sizes {
		r, err := s.Recv()
		if err != nil {
			return fmt.Errorf("response %d: %v", i, err)
		}
		if err := checkPayload(r.Payload, n); err != nil {
			return fmt.Errorf("response %d: %v", i, err)
		}
	}
	if _, err := s.Recv(); err != io.EOF {
		return fmt.Errorf("after the last response: %v, want the end", err)
	}
	return nil
}

func serverCompressedStreaming(e env) error {
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "grpc-accept-encoding", "gzip")
	ctx, l := withRecvLog(ctx)
	s, err := e.tc.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{
		ResponseType: testpb.PayloadType_COMPRESSABLE,
		ResponseParameters: []*testpb.ResponseParameters{
			{Size: 31415, Compressed: boolv(true)},
			{Size: 92653, Compressed: boolv(false)},
		}})
	if err != nil {
		return err
	}
	for i, n := range []int{31415, 92653} {
		r, err := s.Recv()
		if err != nil {
			return fmt.Errorf("response %d: %v", i, err)
		}
		if err := checkPayload(r.Payload, n); err != nil {
			return fmt.Errorf("response %d: %v", i, err)
		}
		if got, _ := l.get(i); got != (i == 0) {
			return fmt.Errorf("response %d: compressed=%v, want %v", i, got, i == 0)
		}
	}
	if _, err := s.Recv(); err != io.EOF {
		return fmt.Errorf("after the last response: %v, want the end", err)
	}
	return nil
}

func pingPong(e env) error {
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	s, err := e.tc.FullDuplexCall(ctx)
	if err != nil {
		return err
	}
	reqs := []int{27182, 8, 1828, 45904}
	resps := []int{31415, 9, 2653, 58979}
	for i := range reqs {
		if err := s.Send(&testpb.StreamingOutputCallRequest{
			ResponseType:       testpb.PayloadType_COMPRESSABLE,
			ResponseParameters: []*testpb.ResponseParameters{{Size: int32(resps[i])}},
			Payload:            pl(reqs[i])}); err != nil {
			return fmt.Errorf("send %d: %v", i, err)
		}
		r, err := s.Recv()
		if err != nil {
			return fmt.Errorf("response %d: %v", i, err)
		}
		if err := checkPayload(r.Payload, resps[i]); err != nil {
			return fmt.Errorf("response %d: %v", i, err)
		}
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	if _, err := s.Recv(); err != io.EOF {
		return fmt.Errorf("after the last response: %v, want the end", err)
	}
	return nil
}

func emptyStream(e env) error {
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	s, err := e.tc.FullDuplexCall(ctx)
	if err != nil {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	if _, err := s.Recv(); err != io.EOF {
		return fmt.Errorf("%v, want the end", err)
	}
	return nil
}

func timeoutOnSleepingServer(e env) error {
	ctx, cancel := ctxT(1 * time.Millisecond)
	defer cancel()
	s, err := e.tc.FullDuplexCall(ctx)
	if err != nil {
		return wantCode(err, codes.DeadlineExceeded, "starting the call")
	}
	err = s.Send(&testpb.StreamingOutputCallRequest{Payload: pl(27182)})
	if err != nil && err != io.EOF {
		return wantCode(err, codes.DeadlineExceeded, "send")
	}
	_, err = s.Recv()
	return wantCode(err, codes.DeadlineExceeded, "recv")
}

func cancelAfterBegin(e env) error {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := e.tc.StreamingInputCall(ctx)
	if err != nil {
		cancel()
		return err
	}
	cancel()
	_, err = s.CloseAndRecv()
	return wantCode(err, codes.Canceled, "after cancelling")
}

func cancelAfterFirstResponse(e env) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := e.tc.FullDuplexCall(ctx)
	if err != nil {
		return err
	}
	if err := s.Send(&testpb.StreamingOutputCallRequest{
		ResponseType:       testpb.PayloadType_COMPRESSABLE,
		ResponseParameters: []*testpb.ResponseParameters{{Size: 31415}},
		Payload:            pl(27182)}); err != nil {
		return err
	}
	if _, err := s.Recv(); err != nil {
		return fmt.Errorf("the first response: %v", err)
	}
	cancel()
	_, err = s.Recv()
	return wantCode(err, codes.Canceled, "after cancelling")
}

const (
	initialKey   = "x-grpc-test-echo-initial"
	initialValue = "test_initial_metadata_value"
	trailingKey  = "x-grpc-test-echo-trailing-bin"
	trailingVal  = "\xab\xab\xab"
)

func checkEcho(header, trailer metadata.MD) error {
	if v := header.Get(initialKey); len(v) != 1 || v[0] != initialValue {
		return fmt.Errorf("header %s = %q, want %q", initialKey, v, initialValue)
	}
	if v := trailer.Get(trailingKey); len(v) != 1 || v[0] != trailingVal {
		return fmt.Errorf("trailer %s = %q, want %q", trailingKey, v, trailingVal)
	}
	return nil
}

func customMetadata(e env) error {
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, initialKey, initialValue, trailingKey, trailingVal)
	var header, trailer metadata.MD
	r, err := e.tc.UnaryCall(ctx, &testpb.SimpleRequest{
		ResponseType: testpb.PayloadType_COMPRESSABLE, ResponseSize: 314159, Payload: pl(271828)},
		grpc.Header(&header), grpc.Trailer(&trailer))
	if err != nil {
		return fmt.Errorf("unary: %v", err)
	}
	if err := checkPayload(r.Payload, 314159); err != nil {
		return fmt.Errorf("unary: %v", err)
	}
	if err := checkEcho(header, trailer); err != nil {
		return fmt.Errorf("unary: %v", err)
	}
	s, err := e.tc.FullDuplexCall(ctx)
	if err != nil {
		return fmt.Errorf("full duplex: %v", err)
	}
	if err := s.Send(&testpb.StreamingOutputCallRequest{
		ResponseType:       testpb.PayloadType_COMPRESSABLE,
		ResponseParameters: []*testpb.ResponseParameters{{Size: 314159}},
		Payload:            pl(271828)}); err != nil {
		return fmt.Errorf("full duplex: send: %v", err)
	}
	if _, err := s.Recv(); err != nil {
		return fmt.Errorf("full duplex: recv: %v", err)
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	if _, err := s.Recv(); err != io.EOF {
		return fmt.Errorf("full duplex: %v, want the end", err)
	}
	header, err = s.Header()
	if err != nil {
		return fmt.Errorf("full duplex: header: %v", err)
	}
	if err := checkEcho(header, s.Trailer()); err != nil {
		return fmt.Errorf("full duplex: %v", err)
	}
	return nil
}

func statusWith(e env, msg string) error {
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	check := func(err error, what string) error {
		st, _ := status.FromError(err)
		if st.Code() != codes.Unknown || st.Message() != msg {
			return fmt.Errorf("%s: status %v %q, want %v %q", what, st.Code(), st.Message(),
				codes.Unknown, msg)
		}
		return nil
	}
	es := &testpb.EchoStatus{Code: int32(codes.Unknown), Message: msg}
	_, err := e.tc.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: es})
	if err := check(err, "unary"); err != nil {
		return err
	}
	s, err := e.tc.FullDuplexCall(ctx)
	if err != nil {
		return err
	}
	if err := s.Send(&testpb.StreamingOutputCallRequest{ResponseStatus: es}); err != nil {
		return fmt.Errorf("full duplex: send: %v", err)
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	_, err = s.Recv()
	return check(err, "full duplex")
}

func statusCodeAndMessage(e env) error { return statusWith(e, "test status message") }

func specialStatusMessage(e env) error {
	return statusWith(e, "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n")
}

func unimplementedMethod(e env) error {
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	_, err := e.tc.UnimplementedCall(ctx, &testpb.Empty{})
	return wantCode(err, codes.Unimplemented, "UnimplementedCall")
}

func unimplementedService(e env) error {
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	_, err := e.uc.UnimplementedCall(ctx, &testpb.Empty{})
	return wantCode(err, codes.Unimplemented, "UnimplementedService/UnimplementedCall")
}

var cases = map[string]func(env) error{
	"empty_unary":                 emptyUnary,
	"large_unary":                 largeUnary,
	"client_compressed_unary":     clientCompressedUnary,
	"server_compressed_unary":     serverCompressedUnary,
	"client_streaming":            clientStreaming,
	"client_compressed_streaming": clientCompressedStreaming,
	"server_streaming":            serverStreaming,
	"server_compressed_streaming": serverCompressedStreaming,
	"ping_pong":                   pingPong,
	"empty_stream":                emptyStream,
	"timeout_on_sleeping_server":  timeoutOnSleepingServer,
	"cancel_after_begin":          cancelAfterBegin,
	"cancel_after_first_response": cancelAfterFirstResponse,
	"custom_metadata":             customMetadata,
	"status_code_and_message":     statusCodeAndMessage,
	"special_status_message":      specialStatusMessage,
	"unimplemented_method":        unimplementedMethod,
	"unimplemented_service":       unimplementedService,
}

func main() {
	flag.Parse()
	names := strings.Split(*testCase, ",")
	if *testCase == "all" {
		names = allCases
	}
	for _, n := range names {
		if cases[n] == nil {
			fmt.Fprintf(os.Stderr, "unknown test case %q\n", n)
			os.Exit(2)
		}
	}
	// not WithBlock: grpc-go 1.33 retries a refused certificate until the
	// dial's timeout; without it, the first call fails at once with it
	opts := []grpc.DialOption{grpc.WithStatsHandler(compressionSpy{})}
	if *useTLS {
		var creds credentials.TransportCredentials
		var err error
		if *caFile != "" {
			creds, err = credentials.NewClientTLSFromFile(*caFile, *hostOverride)
			if err != nil {
				fmt.Fprintln(os.Stderr, "TLS:", err)
				os.Exit(1)
			}
		} else {
			creds = credentials.NewClientTLSFromCert(nil, *hostOverride)
		}
		opts = append(opts, grpc.WithTransportCredentials(creds))
	} else {
		opts = append(opts, grpc.WithInsecure())
	}
	target := net.JoinHostPort(*serverHost, strconv.Itoa(*serverPort))
	conn, err := grpc.Dial(target, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot connect to %s: %v\n", target, err)
		os.Exit(1)
	}
	defer conn.Close()
	e := env{testpb.NewTestServiceClient(conn), testpb.NewUnimplementedServiceClient(conn)}
	failed := 0
	for _, n := range names {
		if err := cases[n](e); err != nil {
			fmt.Printf("FAIL %s: %v\n", n, err)
			failed++
		} else {
			fmt.Printf("ok %s\n", n)
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}
