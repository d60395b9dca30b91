/*
 * fed's internals: the runtime, objects, the wire form of values.
 */
#ifndef ARGOT_FED_INTERNAL_H
#define ARGOT_FED_INTERNAL_H

#include "argot/fed.h"

/* Tags: mpc uses tags below 2^60, apps [2^60, 2^62), fed 2^63 and up:
 * (2^63 | seq << 4 | kind), seq counting the runtime's communicating
 * calls, the same at every party. */
#define FED_TAG(seq, kind) (((uint64_t)1 << 63) | ((uint64_t)(seq) << 4) | (uint64_t)(kind))
enum {
    FED_K_PUSH = 0,   /* a value to one party */
    FED_K_HEADER = 1, /* to_spu: the owner's status and shape */
    FED_K_REVEAL = 2, /* a value to every party */
    FED_K_STATUS = 3, /* ag_wait: a party's statuses */
};

typedef enum obj_kind {
    OBJ_PUBLIC,
    OBJ_PYU,
    OBJ_SPU,
} obj_kind;

struct ag_obj {
    uint64_t id;
    obj_kind kind;
    int owner;          /* OBJ_PYU: the owner's rank */
    int status;         /* 0 or the error (known here) */
    char *errmsg;       /* the error's message (root cause, names the party) */
    ag_value val;       /* public, or PYU here */
    ag_tensor t;        /* SPU */
    bool fxp;           /* SPU: fixed point (else ring integers) */
    ag_obj *prev, *next;
};

struct ag_fed {
    unsigned rank, n;
    char (*names)[32];
    ag_link *link;
    ag_spu_config spu;
    ag_mpc *mpc;        /* at the first SPU call */
    struct ag_rpc_channel *beaver; /* TTP: the channel to the dealer, with mpc */
    char session[128];  /* the job's id ("" if not known) */
    const char *tls_cert, *tls_key, *tls_ca; /* borrowed (ag_fed_opts) */
    int argc;
    char **argv;
    void *udata;
    uint64_t next_id;
    uint64_t seq;       /* communicating calls so far */
    int broken;         /* 0, or the error that broke the runtime */
    char err[AG_ERRMSG_MAX];
    ag_obj *objs;       /* every live object */
};

/* A new object of the given kind (NULL when out of memory). */
ag_obj *ag__fed_obj(ag_fed *f, obj_kind kind, int owner);
/* Makes o an error (code, message copied). Returns o. */
ag_obj *ag__fed_obj_fail(ag_obj *o, int code, const char *fmt, ...) AG_PRINTF(3, 4);
/* An object of this kind that is already an error: the runtime's if it is
 * broken, else src's. */
ag_obj *ag__fed_obj_error_from(ag_fed *f, obj_kind kind, int owner, const ag_obj *src);
/* Breaks the runtime: records the cause and aborts the link, so that every
 * party fails. Returns code. */
int ag__fed_break(ag_fed *f, int code, const char *fmt, ...) AG_PRINTF(3, 4);
/* The SPU session, set up at its first use (collective). */
int ag__fed_mpc(ag_fed *f);

int ag__fed_encode_error(ag_buf *b, int code, const char *msg);
/* The value's header (type, shape) and, with_data, its contents. */
int ag__fed_encode_value(ag_buf *b, const ag_value *v, bool with_data);
/* Decodes a message: *status is the sender's error (0: out holds the
 * value; with_data false: only type and shape). Returns AG_E_MPC_PROTOCOL
 * with err set for a malformed message; on a sender's error, err holds its
 * message. */
int ag__fed_decode(const void *data, size_t len, bool with_data, ag_value *out, int *status,
                   char *err, size_t errcap);

#endif
