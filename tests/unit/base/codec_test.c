/* Tests for src/base/codec.c: hex and base64, RFC 4648 vectors, strictness. */
#include "test.h"

static const char *const rfc_plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const rfc_b64[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
static const char *const rfc_b64_nopad[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE",
                                            "Zm9vYmFy"};

TEST(codec_base64_rfc4648_vectors)
{
    char out[64];
    uint8_t dec[64];
    for (size_t i = 0; i < AG_ARRAY_LEN(rfc_plain); i++) {
        size_t n = strlen(rfc_plain[i]);
        CHECK_EQ(ag_base64_encode(out, rfc_plain[i], n, AG_B64_STD), strlen(rfc_b64[i]));
        CHECK_STR_EQ(out, rfc_b64[i]);
        CHECK_EQ(ag_base64_encoded_len(n, AG_B64_STD), strlen(rfc_b64[i]));
        CHECK_EQ(ag_base64_encode(out, rfc_plain[i], n, AG_B64_NOPAD), strlen(rfc_b64_nopad[i]));
        CHECK_STR_EQ(out, rfc_b64_nopad[i]);
        CHECK_EQ(ag_base64_encoded_len(n, AG_B64_NOPAD), strlen(rfc_b64_nopad[i]));
        CHECK_EQ(ag_base64_decode(dec, sizeof(dec), rfc_b64[i], strlen(rfc_b64[i]), AG_B64_STD),
                 n);
        CHECK_MEM_EQ(dec, rfc_plain[i], n);
        CHECK_EQ(ag_base64_decode(dec, sizeof(dec), rfc_b64_nopad[i], strlen(rfc_b64_nopad[i]),
                                  AG_B64_NOPAD),
                 n);
        CHECK_MEM_EQ(dec, rfc_plain[i], n);
        /* gRPC's rule: both forms accepted */
        CHECK_EQ(ag_base64_decode(dec, sizeof(dec), rfc_b64[i], strlen(rfc_b64[i]),
                                  AG_B64_PAD_OPTIONAL),
                 n);
        CHECK_EQ(ag_base64_decode(dec, sizeof(dec), rfc_b64_nopad[i], strlen(rfc_b64_nopad[i]),
                                  AG_B64_PAD_OPTIONAL),
                 n);
        CHECK(ag_base64_decoded_max(strlen(rfc_b64[i])) >= n);
    }
}

TEST(codec_base64_url_alphabet)
{
    const uint8_t in[] = {0xfb, 0xff, 0xbf};
    char out[16];
    uint8_t dec[8];
    ag_base64_encode(out, in, 3, AG_B64_STD);
    CHECK_STR_EQ(out, "+/+/");
    ag_base64_encode(out, in, 3, AG_B64_URL);
    CHECK_STR_EQ(out, "-_-_");
    CHECK_EQ(ag_base64_decode(dec, sizeof(dec), "-_-_", 4, AG_B64_URL), 3);
    CHECK_MEM_EQ(dec, in, 3);
    CHECK_EQ(ag_base64_decode(dec, sizeof(dec), "-_-_", 4, AG_B64_STD), AG_E_ENCODING);
    CHECK_EQ(ag_base64_decode(dec, sizeof(dec), "+/+/", 4, AG_B64_URL), AG_E_ENCODING);
}

TEST(codec_base64_rejects_noncanonical)
{
    uint8_t dec[16];
    /* padding where forbidden, missing where required, misplaced */
    CHECK_EQ(ag_base64_decode(dec, sizeof(dec), "Zg==", 4, AG_B64_NOPAD), AG_E_ENCODING);
    CHECK_EQ(ag_base64_decode(dec, sizeof(dec), "Zg", 2, AG_B64_STD), AG_E_ENCODING);
    CHECK_EQ(ag_base64_decode(dec, sizeof(dec), "Zg=", 3, AG_B64_STD), AG_E_ENCODING);
    CHECK_EQ(ag_base64_decode(dec, sizeof(dec), "Z===", 4, AG_B64_STD), AG_E_ENCODING);
    CHECK_EQ(ag_base64_decode(dec, sizeof(dec), "Z", 1, AG_B64_NOPAD), AG_E_ENCODING);
    CHECK_EQ(ag_base64_decode(dec, sizeof(dec), "Zg==Zg==", 8, AG_B64_STD), AG_E_ENCODING);
    /* non-zero trailing bits: "Zh==" would also decode to "f" if allowed */
    CHECK_EQ(ag_base64_decode(dec, sizeof(dec), "Zh==", 4, AG_B64_STD), AG_E_ENCODING);
    CHECK_EQ(ag_base64_decode(dec, sizeof(dec), "Zm9=", 4, AG_B64_STD), AG_E_ENCODING);
    /* whitespace and foreign characters */
    CHECK_EQ(ag_base64_decode(dec, sizeof(dec), "Zm9 v", 5, AG_B64_NOPAD), AG_E_ENCODING);
    CHECK_EQ(ag_base64_decode(dec, sizeof(dec), "Zm9\nv", 5, AG_B64_NOPAD), AG_E_ENCODING);
    CHECK_EQ(ag_base64_decode(dec, sizeof(dec), "Zm*v", 4, AG_B64_STD), AG_E_ENCODING);
    /* output too small */
    CHECK_EQ(ag_base64_decode(dec, 5, "Zm9vYmFy", 8, AG_B64_STD), AG_E_TOO_LARGE);
}

TEST(codec_base64_roundtrip_random)
{
    uint8_t in[300], dec[300];
    char enc[512];
    for (size_t n = 0; n < sizeof(in); n += 7) {
        CHECK_OK(ag_random_bytes(in, n));
        for (unsigned flags = 0; flags < 4; flags++) {
            size_t el = ag_base64_encode(enc, in, n, flags);
            CHECK_EQ(el, ag_base64_encoded_len(n, flags));
            CHECK_EQ(strlen(enc), el);
            CHECK_EQ(ag_base64_decode(dec, sizeof(dec), enc, el, flags), n);
            CHECK_MEM_EQ(dec, in, n);
        }
    }
}

TEST(codec_hex)
{
    const uint8_t in[] = {0x00, 0x01, 0xab, 0xff, 0x7f};
    char out[16];
    uint8_t dec[8];
    CHECK_EQ(ag_hex_encode(out, in, sizeof(in)), 10);
    CHECK_STR_EQ(out, "0001abff7f");
    CHECK_EQ(ag_hex_decode(dec, sizeof(dec), "0001ABff7f", 10), 5);
    CHECK_MEM_EQ(dec, in, 5);
    CHECK_EQ(ag_hex_decode(dec, sizeof(dec), "abc", 3), AG_E_ENCODING);
    CHECK_EQ(ag_hex_decode(dec, sizeof(dec), "zz", 2), AG_E_ENCODING);
    CHECK_EQ(ag_hex_decode(dec, 2, "aabbcc", 6), AG_E_TOO_LARGE);
    CHECK_EQ(ag_hex_decode(dec, 0, "", 0), 0);
}
