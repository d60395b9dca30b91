/*
 * Tests for src/mpc/prg.c: the stream is AES-128-CTR's keystream with the
 * block index as a 128-bit big-endian counter from 0 (pinned by known
 * answers computed with `openssl enc -aes-128-ctr`, and checked against
 * OpenSSL's AES-128-CTR over a long stretch), every fill starts at a block
 * boundary and discards the rest of its last block, and fill_at and skip
 * agree with sequential fills. The PRSS and the dealer rely on all three:
 * parties that make the same fills from the same seed stay in step, and
 * rank 0 expands another party's request chunk by chunk at its positions.
 */
#include <openssl/evp.h>

#include "mpc/internal.h"
#include "test.h"

static const uint8_t key[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* The first len bytes of the stream, by OpenSSL's AES-128-CTR over zeros. */
static uint8_t *reference(size_t len)
{
    uint8_t *s = ag_calloc(1, len);
    uint8_t iv[16] = {0};
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0;
    CHECK(s && ctx);
    CHECK(EVP_EncryptInit_ex(ctx, EVP_aes_128_ctr(), NULL, key, iv) == 1);
    CHECK(EVP_EncryptUpdate(ctx, s, &outl, s, (int)len) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return s;
}

TEST(mpc_prg_known_answers)
{
    /* AES-128 with key 000102..0f of the blocks 0, 1 and 1000 */
    static const uint8_t b0[16] = {0xc6, 0xa1, 0x3b, 0x37, 0x87, 0x8f, 0x5b, 0x82,
                                   0x6f, 0x4f, 0x81, 0x62, 0xa1, 0xc8, 0xd8, 0x79};
    static const uint8_t b1[16] = {0x73, 0x46, 0x13, 0x95, 0x95, 0xc0, 0xb4, 0x1e,
                                   0x49, 0x7b, 0xbd, 0xe3, 0x65, 0xf4, 0x2d, 0x0a};
    static const uint8_t b1000[16] = {0x1c, 0xfe, 0xa4, 0x7b, 0xa8, 0x2a, 0xdd, 0xf1,
                                      0x75, 0x21, 0xdb, 0x83, 0x96, 0x2e, 0xf3, 0x9b};
    ag__prg p;
    uint8_t out[32];
    CHECK_OK(ag__prg_init(&p, key));
    CHECK_OK(ag__prg_fill(&p, out, 32));
    CHECK_MEM_EQ(out, b0, 16);
    CHECK_MEM_EQ(out + 16, b1, 16);
    CHECK_U64_EQ(p.ctr, 2);
    CHECK_OK(ag__prg_fill_at(&p, 1000, out, 16));
    CHECK_MEM_EQ(out, b1000, 16);
    CHECK_U64_EQ(p.ctr, 2);
    ag__prg_cleanup(&p);
}

/* Fills of awkward sizes, one after the other: each is the stream from its
 * block, and moves the position by whole blocks. */
TEST(mpc_prg_fills_follow_the_stream)
{
    static const size_t sizes[] = {1, 16, 17, 8, 40000, 16384, 16385, 3, 100000, 15};
    size_t total = 0;
    for (size_t i = 0; i < AG_ARRAY_LEN(sizes); i++)
        total += (sizes[i] + 15) / 16 * 16;
    uint8_t *ref = reference(total);
    uint8_t *out = ag_malloc(100000 + 1);
    CHECK(out != NULL);
    ag__prg p;
    CHECK_OK(ag__prg_init(&p, key));
    uint64_t block = 0;
    for (size_t i = 0; i < AG_ARRAY_LEN(sizes); i++) {
        out[sizes[i]] = 0x5a; /* a fill writes n bytes, not its whole last block */
        CHECK_OK(ag__prg_fill(&p, out, sizes[i]));
        CHECK_MEM_EQ(out, ref + block * 16, sizes[i]);
        CHECK_EQ(out[sizes[i]], 0x5a);
        block += (sizes[i] + 15) / 16;
        CHECK_U64_EQ(p.ctr, block);
    }
    ag__prg_cleanup(&p);
    ag_free(out);
    ag_free(ref);
}

/* A request drawn chunk by chunk at explicit positions, in any order, then
 * skipped, equals the same request drawn by sequential fills. */
TEST(mpc_prg_fill_at_matches_sequential_fills)
{
    enum { N = 3, BYTES = 50000, CHUNK = 16384 };
    uint8_t *seq = ag_malloc(N * BYTES), *at = ag_malloc(N * BYTES);
    CHECK(seq && at);
    ag__prg p, q;
    CHECK_OK(ag__prg_init(&p, key));
    CHECK_OK(ag__prg_init(&q, key));
    /* both streams start off block 0 */
    uint8_t skip[40];
    CHECK_OK(ag__prg_fill(&p, skip, sizeof(skip)));
    ag__prg_skip(&q, sizeof(skip));
    CHECK_U64_EQ(p.ctr, q.ctr);
    for (int k = 0; k < N; k++)
        CHECK_OK(ag__prg_fill(&p, seq + k * BYTES, BYTES));
    uint64_t base = q.ctr, step = (BYTES + 15) / 16;
    for (size_t off = 0; off < BYTES; off += CHUNK)
        for (int k = N - 1; k >= 0; k--) {
            size_t len = AG_MIN((size_t)CHUNK, BYTES - off);
            CHECK_OK(ag__prg_fill_at(&q, base + k * step + off / 16, at + k * BYTES + off, len));
        }
    CHECK_U64_EQ(q.ctr, base);
    for (int k = 0; k < N; k++)
        ag__prg_skip(&q, BYTES);
    CHECK_MEM_EQ(seq, at, N * BYTES);
    CHECK_U64_EQ(p.ctr, q.ctr);
    /* and they go on in step */
    CHECK_OK(ag__prg_fill(&p, seq, 100));
    CHECK_OK(ag__prg_fill(&q, at, 100));
    CHECK_MEM_EQ(seq, at, 100);
    ag__prg_cleanup(&p);
    ag__prg_cleanup(&q);
    ag_free(seq);
    ag_free(at);
}
