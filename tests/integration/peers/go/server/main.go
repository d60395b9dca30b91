// An interop test server for grpc.testing.TestService, written for argot's
// tests against grpc-go (Debian's golang-google-grpc-dev, 1.33): Debian's
// package ships grpc-go's library but not its interop/ programs, so this
// implements the server side of gRPC's interop test descriptions
// (doc/interop-test-descriptions.md in grpc/grpc) on that library, with the
// same flags as grpc-go's interop server:
//
//	--port=N [--use_tls=true --tls_cert_file=F --tls_key_file=F]
//
// It prints "listening PORT" once serving and stops on SIGTERM.
//
// What grpc-go 1.33 cannot do: choose per response whether to compress
// (grpc.SetSendCompressor came in 1.54; 1.33 compresses responses exactly
// when the client compressed its request), so response_compressed and
// ResponseParameters.compressed are ignored: the server_compressed_* cases
// cannot pass against this server. expect_compressed is checked: a stats
// handler compares each received message's length on the wire with its
// decoded length (grpc-go has no API for the per-message compressed flag).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	testpb "argotpeer/testpb"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // decompresses gzip requests
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

var (
	port     = flag.Int("port", 10000, "the port to listen on (0: any)")
	useTLS   = flag.Bool("use_tls", false, "serve over TLS")
	certFile = flag.String("tls_cert_file", "", "the TLS certificate (PEM)")
	keyFile  = flag.String("tls_key_file", "", "the TLS key (PEM)")
)

// ---- was the last received message compressed? ---------------------------

type recvInfo struct {
	mu         sync.Mutex
	compressed bool
}

type recvInfoKey struct{}

type compressionSpy struct{}

func (compressionSpy) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, recvInfoKey{}, &recvInfo{})
}

func (compressionSpy) HandleRPC(ctx context.Context, s stats.RPCStats) {
	in, ok := s.(*stats.InPayload)
	if !ok {
		return
	}
	if ri, ok := ctx.Value(recvInfoKey{}).(*recvInfo); ok {
		ri.mu.Lock()
		// WireLength: the 5-byte prefix and the message as sent; Length:
		// the message decoded. They differ only when it was compressed.
		ri.compressed = in.WireLength != in.Length+5
		ri.mu.Unlock()
	}
}

func (compressionSpy) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}

func (compressionSpy) HandleConn(context.Context, stats.ConnStats) {}

func lastCompressed(ctx context.Context) bool {
	ri, ok := ctx.Value(recvInfoKey{}).(*recvInfo)
	if !ok {
		return false
	}
	ri.mu.Lock()
	defer ri.mu.Unlock()
	return ri.compressed
}

func checkExpectCompressed(ctx context.Context, want *testpb.BoolValue) error {
	if want != nil && want.Value && !lastCompressed(ctx) {
		return status.Error(codes.InvalidArgument, "expected a compressed message")
	}
	return nil
}

// ---- the service ----------------------------------------------------------

type server struct {
	testpb.UnimplementedTestServiceServer
}

func payload(t testpb.PayloadType, size int32) (*testpb.Payload, error) {
	if size < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "negative size %d", size)
	}
	if t != testpb.PayloadType_COMPRESSABLE {
		return nil, status.Errorf(codes.InvalidArgument, "unsupported payload type %d", t)
	}
	return &testpb.Payload{Type: t, Body: make([]byte, size)}, nil
}

// Echoes x-grpc-test-echo-initial as a header and
// x-grpc-test-echo-trailing-bin as a trailer.
func echoMetadata(ctx context.Context, setHeader func(metadata.MD) error,
	setTrailer func(metadata.MD)) error {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return nil
	}
	if v := md.Get("x-grpc-test-echo-initial"); len(v) > 0 {
		if err := setHeader(metadata.Pairs("x-grpc-test-echo-initial", v[0])); err != nil {
			return err
		}
	}
	if v := md.Get("x-grpc-test-echo-trailing-bin"); len(v) > 0 {
		setTrailer(metadata.Pairs("x-grpc-test-echo-trailing-bin", v[0]))
	}
	return nil
}

func echoStatus(st *testpb.EchoStatus) error {
	if st != nil && st.Code != 0 {
		return status.Error(codes.Code(st.Code), st.Message)
	}
	return nil
}

func (server) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

func (server) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if err := echoMetadata(ctx, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) },
		func(md metadata.MD) { grpc.SetTrailer(ctx, md) }); err != nil {
		return nil, err
	}
	if err := echoStatus(in.ResponseStatus); err != nil {
		return nil, err
	}
	if err := checkExpectCompressed(ctx, in.ExpectCompressed); err != nil {
		return nil, err
	}
	pl, err := payload(in.ResponseType, in.ResponseSize)
	if err != nil {
		return nil, err
	}
	return &testpb.SimpleResponse{Payload: pl}, nil
}

func (server) StreamingOutputCall(in *testpb.StreamingOutputCallRequest,
	stream testpb.TestService_StreamingOutputCallServer) error {
	if err := echoStatus(in.ResponseStatus); err != nil {
		return err
	}
	for _, p := range in.ResponseParameters {
		if p.IntervalUs > 0 {
			time.Sleep(time.Duration(p.IntervalUs) * time.Microsecond)
		}
		pl, err := payload(in.ResponseType, p.Size)
		if err != nil {
			return err
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: pl}); err != nil {
			return err
		}
	}
	return nil
}

func (server) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
	var sum int32
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{
				AggregatedPayloadSize: sum,
			})
		}
		if err != nil {
			return err
		}
		if err := checkExpectCompressed(stream.Context(), in.ExpectCompressed); err != nil {
			return err
		}
		if in.Payload != nil {
			sum += int32(len(in.Payload.Body))
		}
	}
}

func (server) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	if err := echoMetadata(stream.Context(), stream.SetHeader, stream.SetTrailer); err != nil {
		return err
	}
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := echoStatus(in.ResponseStatus); err != nil {
			return err
		}
		for _, p := range in.ResponseParameters {
			if p.IntervalUs > 0 {
				time.Sleep(time.Duration(p.IntervalUs) * time.Microsecond)
			}
			pl, err := payload(in.ResponseType, p.Size)
			if err != nil {
				return err
			}
			if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: pl}); err != nil {
				return err
			}
		}
	}
}

func (server) HalfDuplexCall(stream testpb.TestService_HalfDuplexCallServer) error {
	var reqs []*testpb.StreamingOutputCallRequest
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		reqs = append(reqs, in)
	}
	for _, in := range reqs {
		for _, p := range in.ResponseParameters {
			pl, err := payload(in.ResponseType, p.Size)
			if err != nil {
				return err
			}
			if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: pl}); err != nil {
				return err
			}
		}
	}
	return nil
}

func main() {
	flag.Parse()
	opts := []grpc.ServerOption{grpc.StatsHandler(compressionSpy{})}
	if *useTLS {
		if *certFile == "" || *keyFile == "" {
			fmt.Fprintln(os.Stderr, "--use_tls needs --tls_cert_file and --tls_key_file")
			os.Exit(2)
		}
		creds, err := credentials.NewServerTLSFromFile(*certFile, *keyFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "TLS:", err)
			os.Exit(1)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	lis, err := net.Listen("tcp", fmt.Sprintf(":%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	s := grpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(s, &server{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		s.Stop()
	}()
	fmt.Printf("listening %d\n", lis.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	if err := s.Serve(lis); err != nil && err != grpc.ErrServerStopped {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}
