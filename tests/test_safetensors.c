/* Tests of llm/io/safetensors.c: writer -> reader round trips (2-D, 0-d, empty, 8-D
 * tensors, metadata), f16/bf16 conversions (all 65536 halves against an ldexp
 * reference, hand-picked ties, and a golden file written by torch + the reference
 * safetensors library: tools/st_fixture.py), sharded folders with index.json, a battery
 * of corrupt files (every one must fail with a message naming the file), every
 * truncation of a valid file, and a seeded byte-flip fuzz loop. Run from the repository
 * root (or set ST_FIXTURES to tests/fixtures/st). */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm/io/safetensors.h"
#include "quant/rng.h"
#include "quant/status.h"
#include "tests/check.h"

static char *tmpdir;

static const char *tpath(const char *name)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        perror(path);
        exit(2);
    }
    if (n && fwrite(p, 1, n, fp) != n) exit(2);
    fclose(fp);
}

/* A raw file: 8-byte length, header text, data bytes. */
static void write_raw(const char *path, const char *header, const void *data, size_t dlen)
{
    size_t hl = strlen(header);
    unsigned char *b = malloc(8 + hl + dlen + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    if (dlen) memcpy(b + 8 + hl, data, dlen);
    write_bytes(path, b, 8 + hl + dlen);
    free(b);
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long L = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)L + 1);
    *n = fread(b, 1, (size_t)L, fp);
    fclose(fp);
    return b;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* Opening `path` fails with `status`; the message names `file` and contains `needle`. */
static void expect_fail(const char *what, const char *path, int status, const char *file, const char *needle)
{
    st_set *s = (st_set *)1;
    int rc = st_open(&s, path);
    const char *m = rs_last_error();
    CHECK(rc == status && s == NULL && strstr(m, file) && strstr(m, needle), "%s -> %s: %s", what, rs_strerror(rc),
          m);
    if (rc == RS_OK) st_close(s);
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ------------------------------------------------------------------ round trip */

static void test_roundtrip(void)
{
    float a[6 * 7], sc = -3.25f, e8[2 * 1 * 2 * 1 * 1 * 2 * 1 * 3];
    float line[5] = {1.0f, -0.0f, INFINITY, -INFINITY, 1e-45f};
    for (int i = 0; i < 42; i++) a[i] = (float)i * 0.37f - 5.0f;
    for (int i = 0; i < 24; i++) e8[i] = (float)(i * i) - 100.5f;
    st_out t[] = {
        {"gpt_neox.embed_in.weight", a, 2, {6, 7}, ST_F32},
        {"scalar", &sc, 0, {0}, ST_F32},
        {"empty", NULL, 2, {0, 3}, ST_F32},
        {"eight.dims", e8, 8, {2, 1, 2, 1, 1, 2, 1, 3}, ST_F32},
        {"line", line, 1, {5}, ST_F32},
    };
    const char *meta[] = {"format", "pt", "source", "rostesim \"test\""};
    const char *p = tpath("model.safetensors");
    int rc = st_write(p, t, 5, meta, 2);
    CHECK(rc == RS_OK, "write 5 tensors with metadata (%s)", rc ? rs_last_error() : "ok");
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    CHECK(!exists(tmp), "no %s left", tmp);
    size_t n = 0;
    unsigned char *raw = read_all(p, &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | raw[i];
    CHECK(hl % 8 == 0 && raw[8] == '{' && (raw[8 + hl - 1] == ' ' || raw[8 + hl - 1] == '}'),
          "header of %llu bytes, a multiple of 8, padded with spaces", (unsigned long long)hl);
    CHECK(n == 8 + hl + 4 * (42 + 1 + 0 + 24 + 5), "file size %zu = 8 + header + data", n);
    free(raw);

    for (int via_dir = 0; via_dir < 2; via_dir++) {
        st_set *s = NULL;
        rc = st_open(&s, via_dir ? tmpdir : p);
        CHECK(rc == RS_OK && st_count(s) == 5 && st_nfiles(s) == 1, "open %s: %zu tensors (%s)",
              via_dir ? "the folder" : "the file", st_count(s), rc ? rs_last_error() : "ok");
        if (rc) continue;
        int all = 1;
        for (size_t i = 0; i < 5; i++) {
            const st_tensor *x = st_find(s, t[i].name);
            size_t ne = 1;
            for (int d = 0; d < t[i].ndim; d++) ne *= (size_t)t[i].shape[d];
            int ok = x && x->dtype == ST_F32 && strcmp(x->dtype_name, "F32") == 0 && x->ndim == t[i].ndim &&
                     x->nelem == ne && x->nbytes == 4 * ne && x->file == 0 &&
                     memcmp(x->shape, t[i].shape, sizeof(int64_t) * (size_t)t[i].ndim) == 0 &&
                     st_get(s, i) == x && x->offset >= 8 + hl;
            float *buf = malloc((ne ? ne : 1) * sizeof *buf);
            ok = ok && st_read_f32(x, buf) == RS_OK && (ne == 0 || memcmp(buf, t[i].data, 4 * ne) == 0);
            ok = ok && st_expect_shape(s, x, t[i].ndim, t[i].shape) == RS_OK;
            free(buf);
            if (!ok) printf("  tensor %s differs\n", t[i].name);
            all &= ok;
        }
        CHECK(all, "names, order, dtype, shapes (0-d, empty, 8-D), element counts and values bit for bit");
        CHECK(st_find(s, "nope") == NULL && st_find(s, "") == NULL && st_get(s, 5) == NULL, "absent names give NULL");
        const char *fmt = st_metadata(s, 0, "format"), *src = st_metadata(s, 0, "source");
        CHECK(fmt && strcmp(fmt, "pt") == 0 && src && strcmp(src, "rostesim \"test\"") == 0 &&
                  st_metadata(s, 0, "x") == NULL && st_metadata(s, 1, "format") == NULL,
              "metadata read back (escaped quotes)");
        const st_tensor *x = st_find(s, "gpt_neox.embed_in.weight");
        int64_t wrong[2] = {7, 6};
        rc = st_expect_shape(s, x, 2, wrong);
        CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "[6, 7]") && strstr(rs_last_error(), "[7, 6]") &&
                  strstr(rs_last_error(), "model.safetensors") && strstr(rs_last_error(), "gpt_neox.embed_in.weight"),
              "shape mismatch names file, tensor and both shapes: %s", rs_last_error());
        CHECK(strcmp(st_file_name(s, 0), via_dir ? tpath("model.safetensors") : p) == 0 && st_file_name(s, 1) == NULL,
              "st_file_name %s", st_file_name(s, 0));
        st_close(s);
    }
    st_close(NULL);

    /* no tensors at all, no metadata: "{}" padded */
    const char *p0 = tpath("none.safetensors");
    rc = st_write(p0, NULL, 0, NULL, 0);
    st_set *s = NULL;
    int rc2 = rc ? rc : st_open(&s, p0);
    CHECK(rc == RS_OK && rc2 == RS_OK && st_count(s) == 0, "empty file (no tensors) round trip (%s)",
          rc || rc2 ? rs_last_error() : "ok");
    st_close(s);
    unlink(p0);

    /* writer errors: nothing is created, an existing file is left as it was */
    size_t before_n = 0, after_n = 0;
    unsigned char *before = read_all(p, &before_n);
    st_out dup[] = {{"a", a, 1, {2}, ST_F32}, {"a", a, 1, {3}, ST_F32}};
    rc = st_write(p, dup, 2, NULL, 0);
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "duplicate tensor name 'a'"), "duplicate names: %s",
          rs_last_error());
    unsigned char *after = read_all(p, &after_n);
    CHECK(before_n == after_n && memcmp(before, after, before_n) == 0 && !exists(tmp),
          "a failed write leaves the old file intact and no temp file");
    free(before);
    free(after);
    st_out neg[] = {{"a", a, 2, {2, -1}, ST_F32}};
    rc = st_write(p, neg, 1, NULL, 0);
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "negative"), "negative dim: %s", rs_last_error());
    st_out nod[] = {{"a", NULL, 1, {2}, ST_F32}};
    rc = st_write(p, nod, 1, NULL, 0);
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "NULL data"), "NULL data: %s", rs_last_error());
    st_out nine[] = {{"a", a, 9, {1, 1, 1, 1, 1, 1, 1, 1}, ST_F32}};
    rc = st_write(p, nine, 1, NULL, 0);
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "ndim 9"), "9 dims: %s", rs_last_error());
    st_out big[] = {{"a", a, 3, {1 << 30, 1 << 30, 1 << 30}, ST_F32}};
    rc = st_write(p, big, 1, NULL, 0);
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "overflow"), "2^90 elements: %s", rs_last_error());
    st_out meta_name[] = {{"__metadata__", a, 1, {1}, ST_F32}};
    rc = st_write(p, meta_name, 1, NULL, 0);
    CHECK(rc == RS_EINVAL, "a tensor may not be called __metadata__: %s", rs_last_error());
    const char *badmeta[] = {"k", NULL};
    rc = st_write(p, t, 1, badmeta, 1);
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "metadata"), "NULL metadata value: %s", rs_last_error());
    rc = st_write("/nonexistent-dir/x.safetensors", t, 1, NULL, 0);
    CHECK(rc == RS_EIO && strstr(rs_last_error(), "/nonexistent-dir/x.safetensors.tmp"), "missing folder: %s",
          rs_last_error());
    unlink(p);
}

/* Integer tensors (the packed int model export): written with their dtype, read back as the
 * same bytes; a dtype the writer does not know is refused. */
static void test_int_dtypes(void)
{
    const int32_t z[3] = {INT32_MIN, -5, INT32_MAX};
    const int8_t c[4] = {-128, -1, 0, 127};
    const uint8_t u[6] = {0, 1, 0x0f, 0xf0, 0x80, 0xff};
    const float f[2] = {0.25f, -3.0f};
    st_out t[] = {{"q.zeros", z, 1, {3}, ST_I32}, {"q.codes", c, 2, {2, 2}, ST_I8}, {"q.packed", u, 2, {3, 2}, ST_U8},
                  {"q.scales", f, 1, {2}, ST_F32}};
    const char *p = tpath("ints.safetensors");
    int rc = st_write(p, t, 4, NULL, 0);
    CHECK(rc == RS_OK, "write I32, I8, U8 and F32 tensors (%s)", rc ? rs_last_error() : "ok");
    st_set *s = NULL;
    rc = rc ? rc : st_open(&s, p);
    const st_tensor *tz = s ? st_find(s, "q.zeros") : NULL, *tc = s ? st_find(s, "q.codes") : NULL;
    const st_tensor *tu = s ? st_find(s, "q.packed") : NULL, *tf = s ? st_find(s, "q.scales") : NULL;
    CHECK(rc == RS_OK && tz && tc && tu && tf && tz->dtype == ST_I32 && tc->dtype == ST_I8 && tu->dtype == ST_U8 &&
              tf->dtype == ST_F32 && tz->nbytes == 12 && tc->nbytes == 4 && tu->nbytes == 6 && tf->nbytes == 8 &&
              tu->ndim == 2 && tu->shape[0] == 3 && tu->shape[1] == 2,
          "read back: dtypes I32/I8/U8/F32, byte counts 12/4/6/8, shapes kept");
    CHECK(tz && tc && tu && tf && !memcmp(tz->data, z, 12) && !memcmp(tc->data, c, 4) && !memcmp(tu->data, u, 6) &&
              !memcmp(tf->data, f, 8),
          "read back: the same bytes");
    CHECK(tc && st_read_f32(tc, (float[4]){0}) == RS_ENOTSUP, "st_read_f32 of an I8 tensor: RS_ENOTSUP");
    st_close(s);
    st_out bad[] = {{"x", f, 1, {2}, ST_BF16}};
    rc = st_write(p, bad, 1, NULL, 0);
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "dtype") && strstr(rs_last_error(), "'x'"),
          "a dtype the writer does not write: %s", rs_last_error());
    unlink(p);
}

/* ------------------------------------------------------------------ conversions */

static double f16_ref(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static void test_conversions(void)
{
    int bad = 0, bad_rt = 0, first = -1;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = st_f16_to_f32((uint16_t)h);
        double r = f16_ref((uint16_t)h);
        int e = (h >> 10) & 31, m = h & 1023;
        int ok;
        if (e == 31 && m) /* NaN: sign and payload kept (payload lands in the top mantissa bits) */
            ok = isnan(f) && (fbits(f) >> 31) == (h >> 15) && ((fbits(f) >> 13) & 1023) == (uint32_t)m;
        else
            ok = (double)f == r && !!signbit(f) == !!signbit(r);
        if (!ok && first < 0) first = (int)h;
        bad += !ok;
        uint16_t back = st_f32_to_f16(f);
        if (!(e == 31 && m) && back != h) bad_rt++;
        if (e == 31 && m && ((back & 0x7c00) != 0x7c00 || !(back & 0x3ff))) bad_rt++;
    }
    CHECK(bad == 0, "all 65536 f16 patterns -> f32 equal the ldexp reference (subnormals, +-0, inf, NaN payloads); "
                    "%d wrong (first 0x%04x)", bad, first < 0 ? 0 : first);
    CHECK(bad_rt == 0, "f16 -> f32 -> f16 is the identity on all 63488 non-NaN patterns, NaN stays NaN (%d wrong)",
          bad_rt);

    const struct { float x; uint16_t h; const char *what; } f16[] = {
        {1.0f, 0x3c00, "1"},
        {1.0f + 0x1p-11f, 0x3c00, "1 + 2^-11: tie, stays even"},
        {1.0f + 3 * 0x1p-11f, 0x3c02, "1 + 3*2^-11: tie, rounds up to even"},
        {nextafterf(1.0f + 0x1p-11f, 2.0f), 0x3c01, "just above the tie"},
        {65504.0f, 0x7bff, "65504 (largest)"},
        {65519.996f, 0x7bff, "just below 65520"},
        {65520.0f, 0x7c00, "65520: tie, rounds to inf"},
        {1e10f, 0x7c00, "1e10 overflows to inf"},
        {-INFINITY, 0xfc00, "-inf"},
        {0x1p-24f, 0x0001, "2^-24 (smallest subnormal)"},
        {0x1p-25f, 0x0000, "2^-25: tie, rounds to 0"},
        {nextafterf(0x1p-25f, 1.0f), 0x0001, "just above 2^-25"},
        {3 * 0x1p-25f, 0x0002, "3*2^-25: tie, rounds to even 2^-23"},
        {5 * 0x1p-25f, 0x0002, "5*2^-25: tie, rounds to even 2^-23"},
        {0x1p-14f, 0x0400, "2^-14 (smallest normal)"},
        {0x1p-14f - 0x1p-25f, 0x0400, "2^-14 - 2^-25: tie, rounds up into the normals"},
        {-0.0f, 0x8000, "-0"},
        {1e-30f, 0x0000, "1e-30 underflows to 0"},
        {-1e-30f, 0x8000, "-1e-30 underflows to -0"},
    };
    for (size_t i = 0; i < sizeof f16 / sizeof f16[0]; i++) {
        uint16_t h = st_f32_to_f16(f16[i].x);
        CHECK(h == f16[i].h, "f32 -> f16 %s: %.9g -> 0x%04x (want 0x%04x)", f16[i].what, (double)f16[i].x, h, f16[i].h);
    }
    uint16_t hn = st_f32_to_f16(NAN);
    CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff), "f32 NaN -> f16 NaN (0x%04x)", hn);
    hn = st_f32_to_f16(bitsf(0x7f800001)); /* signalling NaN whose payload is all in the low bits */
    CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff), "f32 NaN with a low payload stays NaN, not inf (0x%04x)", hn);

    const struct { uint32_t x; uint16_t b; const char *what; } bf[] = {
        {0x3f800000, 0x3f80, "1"},
        {0x3f808000, 0x3f80, "tie, stays even"},
        {0x3f818000, 0x3f82, "tie, rounds up to even"},
        {0x3f808001, 0x3f81, "just above a tie"},
        {0x3f807fff, 0x3f80, "just below a tie"},
        {0x7f7fffff, 0x7f80, "largest f32 rounds to inf"},
        {0xff800000, 0xff80, "-inf"},
        {0x00000001, 0x0000, "smallest f32 subnormal rounds to 0"},
        {0x80008000, 0x8000, "negative subnormal tie to -0"},
        {0x00018000, 0x0002, "subnormal tie rounds up to even"},
    };
    for (size_t i = 0; i < sizeof bf / sizeof bf[0]; i++) {
        uint16_t b = st_f32_to_bf16(bitsf(bf[i].x));
        CHECK(b == bf[i].b, "f32 -> bf16 %s: 0x%08x -> 0x%04x (want 0x%04x)", bf[i].what, bf[i].x, b, bf[i].b);
    }
    uint16_t bn = st_f32_to_bf16(bitsf(0x7f800001));
    CHECK((bn & 0x7f80) == 0x7f80 && (bn & 0x7f), "f32 NaN with a low payload -> bf16 NaN, not inf (0x%04x)", bn);
    CHECK(fbits(st_bf16_to_f32(0xc049)) == 0xc0490000u && fbits(st_bf16_to_f32(0x0001)) == 0x00010000u,
          "bf16 -> f32 is a shift (-3.140625, a subnormal)");
}

/* The golden file of tools/st_fixture.py: torch's conversions, the reference writer. */
static void test_torch_fixture(void)
{
    const char *dir = getenv("ST_FIXTURES");
    char path[1024];
    snprintf(path, sizeof path, "%s/torch.safetensors", dir && dir[0] ? dir : "tests/fixtures/st");
    st_set *s = NULL;
    int rc = st_open(&s, path);
    CHECK(rc == RS_OK && st_count(s) == 13, "open %s written by Python safetensors: %zu tensors (%s)", path,
          st_count(s), rc ? rs_last_error() : "ok");
    if (rc) return;
    const st_tensor *src = st_find(s, "f32_src"), *h = st_find(s, "f32_to_f16"), *b = st_find(s, "f32_to_bf16");
    CHECK(src && h && b && src->dtype == ST_F32 && h->dtype == ST_F16 && b->dtype == ST_BF16 &&
              h->nelem == src->nelem && b->nelem == src->nelem,
          "rounding tensors: F32, F16, BF16 of %zu elements", src ? src->nelem : 0);
    if (src && h && b && h->nelem == src->nelem && b->nelem == src->nelem) {
        size_t n = src->nelem, bad16 = 0, badbf = 0, badread = 0, f16i = 0, bfi = 0;
        float *x = malloc(n * sizeof *x), *xh = malloc(n * sizeof *xh);
        st_read_f32(src, x);
        st_read_f32(h, xh);
        for (size_t i = 0; i < n; i++) {
            uint16_t th, tb;
            memcpy(&th, (const char *)h->data + 2 * i, 2);
            memcpy(&tb, (const char *)b->data + 2 * i, 2);
            if (st_f32_to_f16(x[i]) != th && bad16++ == 0) f16i = i;
            if (st_f32_to_bf16(x[i]) != tb && badbf++ == 0) bfi = i;
            if (fbits(xh[i]) != fbits(st_f16_to_f32(th))) badread++;
        }
        CHECK(bad16 == 0, "f32 -> f16 equals torch on all %zu cases (ties, subnormals, overflow): %zu differ (first "
                          "%.9g)", n, bad16, (double)x[f16i]);
        CHECK(badbf == 0, "f32 -> bf16 equals torch on all %zu cases: %zu differ (first %.9g)", n, badbf,
              (double)x[bfi]);
        CHECK(badread == 0, "st_read_f32 on an F16 tensor = st_f16_to_f32 element-wise (%zu differ)", badread);
        free(x);
        free(xh);
    }
    const char *pairs[2][2] = {{"f64_src", "f64_to_f32"}, {"bf16_all", "bf16_all_f32"}};
    for (int k = 0; k < 2; k++) {
        const st_tensor *a = st_find(s, pairs[k][0]), *w = st_find(s, pairs[k][1]);
        int ok = a && w && a->nelem == w->nelem && w->dtype == ST_F32;
        size_t bad = 0;
        if (ok) {
            float *x = malloc(a->nelem * sizeof *x), *y = malloc(a->nelem * sizeof *y);
            ok = st_read_f32(a, x) == RS_OK && st_read_f32(w, y) == RS_OK;
            for (size_t i = 0; ok && i < a->nelem; i++) bad += fbits(x[i]) != fbits(y[i]);
            free(x);
            free(y);
        }
        CHECK(ok && bad == 0, "%s -> f32 equals torch's %s bit for bit (%zu elements, %zu differ)", pairs[k][0],
              pairs[k][1], a ? a->nelem : 0, bad);
    }
    const struct { const char *name; st_dtype dt; const char *dn; int ndim; int64_t d0; size_t nelem; } other[] = {
        {"ids.i64", ST_I64, "I64", 2, 2, 6}, {"ids.i16", ST_OTHER, "I16", 1, 2, 2},
        {"mask.u8", ST_U8, "U8", 1, 3, 3},   {"mask.bool", ST_BOOL, "BOOL", 1, 2, 2},
    };
    for (size_t i = 0; i < 4; i++) {
        const st_tensor *t = st_find(s, other[i].name);
        float tmp[8];
        CHECK(t && t->dtype == other[i].dt && strcmp(t->dtype_name, other[i].dn) == 0 && t->ndim == other[i].ndim &&
                  t->shape[0] == other[i].d0 && t->nelem == other[i].nelem && st_read_f32(t, tmp) == RS_ENOTSUP &&
                  strstr(rs_last_error(), other[i].dn),
              "%s: dtype %s, %zu elements; st_read_f32 refuses it: %s", other[i].name, other[i].dn, other[i].nelem,
              rs_last_error());
    }
    const st_tensor *sc = st_find(s, "scalar"), *em = st_find(s, "empty");
    float v = 0;
    CHECK(sc && sc->ndim == 0 && sc->nelem == 1 && st_read_f32(sc, &v) == RS_OK && v == 2.5f, "0-d scalar 2.5");
    CHECK(em && em->ndim == 2 && em->nelem == 0 && em->nbytes == 0 && em->shape[1] == 3, "empty (0, 3) tensor");
    const char *fmt = st_metadata(s, 0, "format");
    CHECK(fmt && strcmp(fmt, "pt") == 0, "__metadata__ format = pt");
    st_close(s);
}

/* ------------------------------------------------------------------ shards */

static void write_index(const char *dir, const char *text)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_bytes(p, text, strlen(text));
}

static void test_shards(void)
{
    const char *dir = tpath("sharded");
    mkdir(dir, 0700);
    char p1[1024], p2[1024], p3[1024];
    snprintf(p1, sizeof p1, "%s/model-00001-of-00002.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/model-00002-of-00002.safetensors", dir);
    snprintf(p3, sizeof p3, "%s/extra.safetensors", dir);
    float a[6] = {1, 2, 3, 4, 5, 6}, b[4] = {-1, -2, -3, -4}, c[3] = {9, 8, 7};
    st_out s1[] = {{"embed.weight", a, 2, {2, 3}, ST_F32}, {"layers.0.w", b, 1, {4}, ST_F32}};
    st_out s2[] = {{"layers.1.w", c, 1, {3}, ST_F32}};
    int rc = st_write(p1, s1, 2, NULL, 0) | st_write(p2, s2, 1, NULL, 0);
    const char *good = "{\"metadata\": {\"total_size\": 52}, \"weight_map\": {"
                       "\"embed.weight\": \"model-00001-of-00002.safetensors\","
                       "\"layers.0.w\": \"model-00001-of-00002.safetensors\","
                       "\"layers.1.w\": \"model-00002-of-00002.safetensors\"}}";
    write_index(dir, good);
    st_set *s = NULL;
    rc = rc ? rc : st_open(&s, dir);
    CHECK(rc == RS_OK && st_count(s) == 3 && st_nfiles(s) == 2, "sharded folder: 3 tensors in 2 shards (%s)",
          rc ? rs_last_error() : "ok");
    if (!rc) {
        const st_tensor *t = st_find(s, "layers.1.w");
        float x[3];
        CHECK(t && strcmp(st_file_name(s, t->file), p2) == 0 && st_read_f32(t, x) == RS_OK && x[0] == 9 && x[2] == 7,
              "layers.1.w lives in %s with its values", t ? st_file_name(s, t->file) : "?");
        t = st_find(s, "embed.weight");
        CHECK(t && strcmp(st_file_name(s, t->file), p1) == 0 && t->shape[0] == 2 && t->shape[1] == 3,
              "embed.weight (2, 3) in shard 1");
        st_close(s);
    }
    char ip[1024];
    snprintf(ip, sizeof ip, "%s/model.safetensors.index.json", dir);
    rc = st_open(&s, ip);
    CHECK(rc == RS_OK && st_count(s) == 3, "open through the index.json path (%s)", rc ? rs_last_error() : "ok");
    st_close(s);

    {   /* model.safetensors beside an index wins, as in transformers */
        char single[1024];
        snprintf(single, sizeof single, "%s/model.safetensors", dir);
        st_write(single, s2, 1, NULL, 0);
        rc = st_open(&s, dir);
        CHECK(rc == RS_OK && st_count(s) == 1 && st_nfiles(s) == 1, "model.safetensors is preferred over the index");
        st_close(s);
        unlink(single);
    }
    write_index(dir, "{\"weight_map\": {\"embed.weight\": \"model-00001-of-00002.safetensors\","
                     "\"layers.0.w\": \"model-00001-of-00002.safetensors\","
                     "\"layers.1.w\": \"model-00003-of-00002.safetensors\"}}");
    expect_fail("index names a missing shard", dir, RS_EIO, "index.json", "shard 'model-00003-of-00002.safetensors' is missing");
    write_index(dir, "{\"weight_map\": {\"embed.weight\": \"model-00001-of-00002.safetensors\","
                     "\"layers.0.w\": \"model-00001-of-00002.safetensors\","
                     "\"layers.1.w\": \"model-00002-of-00002.safetensors\","
                     "\"layers.2.w\": \"model-00002-of-00002.safetensors\"}}");
    expect_fail("tensor of the map missing from its shard", dir, RS_EINVAL, "index.json",
                "tensor 'layers.2.w' of the weight_map is missing from shard 'model-00002-of-00002.safetensors'");
    write_index(dir, "{\"weight_map\": {\"embed.weight\": \"model-00001-of-00002.safetensors\","
                     "\"layers.0.w\": \"model-00002-of-00002.safetensors\","
                     "\"layers.1.w\": \"model-00002-of-00002.safetensors\"}}");
    expect_fail("tensor in another shard than the map says", dir, RS_EINVAL, "index.json",
                "tensor 'layers.0.w' is in");
    write_index(dir, "{\"weight_map\": {\"embed.weight\": \"model-00001-of-00002.safetensors\","
                     "\"layers.1.w\": \"model-00002-of-00002.safetensors\"}}");
    expect_fail("tensor of a shard not in the map", dir, RS_EINVAL, "index.json",
                "tensor 'layers.0.w' of");
    st_out dup[] = {{"layers.1.w", c, 1, {3}, ST_F32}};
    st_write(p3, dup, 1, NULL, 0);
    write_index(dir, "{\"weight_map\": {\"embed.weight\": \"model-00001-of-00002.safetensors\","
                     "\"layers.0.w\": \"model-00001-of-00002.safetensors\","
                     "\"layers.1.w\": \"model-00002-of-00002.safetensors\","
                     "\"x\": \"extra.safetensors\"}}");
    expect_fail("same tensor in two shards", dir, RS_EINVAL, "safetensors", "tensor 'layers.1.w' is also in");
    write_index(dir, "{\"weight_map\": {\"embed.weight\": \"model-00001-of-00002.safetensors\",,}}");
    expect_fail("malformed index.json", dir, RS_EINVAL, "model.safetensors.index.json", "invalid JSON at byte 68 near '}}'");
    write_index(dir, "{\"weight_map\": [\"model-00001-of-00002.safetensors\"]}");
    expect_fail("weight_map an array", dir, RS_EINVAL, "index.json", "\"weight_map\" is an array");
    write_index(dir, "{\"metadata\": {}}");
    expect_fail("no weight_map", dir, RS_EINVAL, "index.json", "no \"weight_map\"");
    write_index(dir, "{\"weight_map\": {}}");
    expect_fail("empty weight_map", dir, RS_EINVAL, "index.json", "empty");
    write_index(dir, "{\"weight_map\": {\"embed.weight\": \"../model.safetensors\"}}");
    expect_fail("shard outside the folder", dir, RS_EINVAL, "index.json", "not a file name in the same folder");
    write_index(dir, "{\"weight_map\": {\"embed.weight\": 3}}");
    expect_fail("shard name a number", dir, RS_EINVAL, "index.json", "'embed.weight' is a number");
    write_index(dir, "{\"weight_map\": {\"embed.weight\": \"model-00001-of-00002.safetensors\","
                     "\"embed.weight\": \"model-00001-of-00002.safetensors\"}}");
    expect_fail("duplicate weight_map key", dir, RS_EINVAL, "index.json", "duplicate weight_map entry 'embed.weight'");
    write_index(dir, "[]");
    expect_fail("index is an array", dir, RS_EINVAL, "index.json", "not a JSON object");
    unlink(ip);
    expect_fail("folder without model files", dir, RS_EIO, dir, "no model.safetensors");
    unlink(p1);
    unlink(p2);
    unlink(p3);
    rmdir(dir);
}

/* ------------------------------------------------------------------ corruptions */

static void test_corrupt(void)
{
    const char *p = tpath("bad.safetensors");
    float d4[4] = {1, 2, 3, 4};
    char h[512];
    write_bytes(p, "", 0);
    expect_fail("empty file", p, RS_EINVAL, p, "shorter than the 8-byte header length");
    write_bytes(p, "\x10\0\0\0\0\0\0", 7);
    expect_fail("7-byte file", p, RS_EINVAL, p, "shorter than the 8-byte header length");
    expect_fail("missing file", tpath("nothing.safetensors"), RS_EIO, "nothing.safetensors", "cannot open");
    unsigned char big[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    write_bytes(p, big, 10);
    expect_fail("header length 2^64-1", p, RS_EINVAL, p, "header length 18446744073709551615 exceeds the 2 bytes");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d4, 4);
    /* claim a header longer than the file */
    {
        size_t n;
        unsigned char *b = read_all(p, &n);
        b[0] = (unsigned char)(n - 8 + 1);
        write_bytes(p, b, n);
        free(b);
        expect_fail("header length one past the end", p, RS_EINVAL, p, "exceeds the");
    }
    {   /* a header length over the 100 MB cap in a sparse file that is long enough */
        int fd = open(p, O_WRONLY | O_TRUNC);
        uint64_t L = (uint64_t)200 << 20;
        unsigned char len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(L >> (8 * i));
        CHECK(fd >= 0 && write(fd, len8, 8) == 8 && ftruncate(fd, (off_t)(L + 8)) == 0, "sparse 200 MB file");
        close(fd);
        expect_fail("header of 200 MB", p, RS_EINVAL, p, "exceeds the limit");
    }
#define HDR(...) (snprintf(h, sizeof h, __VA_ARGS__), h)
    struct {
        const char *what, *header, *needle;
        size_t dlen;
    } cases[] = {
        {"offsets past the end", "{\"gpt_neox.embed_in.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         "tensor 'gpt_neox.embed_in.weight': data_offsets [0, 8] exceed the 4 bytes of data", 4},
        {"overlapping tensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         "tensor 'b' (data bytes 4..12) overlaps tensor 'a'", 16},
        {"gap between tensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         "data bytes 4..8 (before tensor 'b') belong to no tensor", 12},
        {"trailing bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "12 trailing data bytes", 16},
        {"nelem*size != end-begin", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}",
         "tensor 'a': data_offsets [0, 16] hold 16 bytes but 3 elements of F32 need 12", 16},
        {"bf16 size mismatch", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
         "4 elements of BF16 need 8", 16},
        {"negative shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}",
         "tensor 'a': shape[0] is -4, not a non-negative integer", 16},
        {"fractional shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4, 0.5],\"data_offsets\":[0,16]}}",
         "shape[1] is 0.5", 16},
        {"huge shape (overflow)",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,16]}}",
         "tensor 'a': shape product overflows", 16},
        {"shape 2^62 * F32 overflows bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,16]}}",
         "shape product overflows", 16},
        {"shape beyond 2^53", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1e300],\"data_offsets\":[0,16]}}", "shape[0] is 1.0000000000000001e+300",
         16},
        {"9 dimensions", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,4],\"data_offsets\":[0,16]}}",
         "shape has 9 dimensions", 16},
        {"shape a string", "{\"a\":{\"dtype\":\"F32\",\"shape\":\"4\",\"data_offsets\":[0,16]}}", "shape is a string", 16},
        {"bad dtype", "{\"a\":{\"dtype\":\"F17\",\"shape\":[4],\"data_offsets\":[0,16]}}", "tensor 'a': unknown dtype 'F17'",
         16},
        {"dtype a number", "{\"a\":{\"dtype\":32,\"shape\":[4],\"data_offsets\":[0,16]}}", "dtype is a number", 16},
        {"missing dtype", "{\"a\":{\"shape\":[4],\"data_offsets\":[0,16]}}", "tensor 'a': no dtype", 16},
        {"duplicate field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"dtype\":\"F16\",\"data_offsets\":[0,16]}}",
         "tensor 'a': duplicate field 'dtype'", 16},
        {"three offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8,16]}}",
         "data_offsets is an array of another length", 16},
        {"offsets reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,0]}}",
         "data_offsets [16, 0] end before they begin", 16},
        {"negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[-16,0]}}", "data_offsets[0] is -16", 16},
        {"offset a string", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,\"16\"]}}",
         "data_offsets[1] is a string", 16},
        {"non-object JSON", "[1, 2, 3]", "header does not start with '{'", 16},
        {"entry not an object", "{\"a\":[1,2]}", "tensor 'a': entry is an array, not an object", 16},
        {"duplicate key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
         "duplicate tensor 'a'", 16},
        {"invalid JSON", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4] \"data_offsets\":[0,16]}}",
         "invalid JSON at byte 32 (file offset 40)", 16},
        {"trailing characters", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}} x",
         "trailing characters after the JSON at byte", 16},
        {"metadata value a number", "{\"__metadata__\":{\"format\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
         "\"__metadata__\" value 'format' is a number", 16},
        {"two __metadata__", "{\"__metadata__\":{},\"__metadata__\":{},\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
         "duplicate \"__metadata__\"", 16},
        {"F4 odd element count", "{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", "do not fill whole bytes", 2},
        {"data but no tensors", "{}  ", "no tensors, but 16 bytes of data", 16},
        {"weird name escaped", "{\"a\\u0001\\n\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}",
         "tensor 'a\\x01\\x0a'", 16},
    };
    unsigned char zeros[64] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_raw(p, cases[i].header, zeros, cases[i].dlen);
        expect_fail(cases[i].what, p, RS_EINVAL, p, cases[i].needle);
    }
    /* a NUL byte inside the header */
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d4, 4);
    {
        size_t n;
        unsigned char *b = read_all(p, &n);
        b[8 + 5] = 0;
        write_bytes(p, b, n);
        free(b);
        expect_fail("NUL in the header", p, RS_EINVAL, p, "NUL byte in the JSON header at byte 5");
    }
    /* valid edge cases the reader must accept */
    write_raw(p, HDR("{\"z\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[2,4]},"
                     "\"y\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]},"
                     "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]},"
                     "\"e2\":{\"dtype\":\"F16\",\"shape\":[3,0],\"data_offsets\":[4,4]}}   \n"),
              zeros, 4);
    st_set *s = NULL;
    int rc = st_open(&s, p);
    CHECK(rc == RS_OK && st_count(s) == 4 && st_find(s, "z")->nbytes == 2 && st_find(s, "z")->dtype == ST_OTHER &&
              st_find(s, "e")->nelem == 0,
          "F4 (2 per byte), F8, two empty tensors at one offset, trailing whitespace: accepted (%s)",
          rc ? rs_last_error() : "ok");
    st_close(s);
    unlink(p);
#undef HDR
}

/* Every proper prefix of a valid file fails cleanly. */
static void test_truncation(void)
{
    const char *p = tpath("full.safetensors"), *q = tpath("cut.safetensors");
    float a[5] = {1, 2, 3, 4, 5}, b[3] = {6, 7, 8};
    st_out t[] = {{"a", a, 1, {5}, ST_F32}, {"b", b, 2, {3, 1}, ST_F32}};
    const char *meta[] = {"format", "pt"};
    st_write(p, t, 2, meta, 1);
    size_t n = 0;
    unsigned char *full = read_all(p, &n);
    size_t fails = 0, named = 0;
    for (size_t L = 0; L < n; L++) {
        write_bytes(q, full, L);
        st_set *s = NULL;
        int rc = st_open(&s, q);
        fails += rc == RS_EINVAL && s == NULL;
        named += strstr(rs_last_error(), "cut.safetensors") != NULL;
        st_close(s);
    }
    CHECK(fails == n && named == n, "all %zu proper prefixes of a %zu-byte file fail with EINVAL naming the file "
                                    "(%zu did, %zu named it)", n, n, fails, named);
    free(full);
    unlink(p);
    unlink(q);
}

/* Random byte flips over a valid file: no crash, and every success is consistent. */
static void test_fuzz(void)
{
    const char *p = tpath("fuzz.safetensors"), *q = tpath("mut.safetensors");
    /* a hand-written valid file with F32, F16 and BF16 tensors and metadata */
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                      "\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
                      "\"g\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[32,40]},"
                      "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[40,44]}}";
    unsigned char data[44];
    for (int i = 0; i < 44; i++) data[i] = (unsigned char)(i * 37 + 11);
    write_raw(p, hdr, data, 44);
    size_t n = 0;
    unsigned char *orig = read_all(p, &n), *buf = malloc(n);
    st_set *s = NULL;
    int rc = st_open(&s, p);
    CHECK(rc == RS_OK && st_count(s) == 4, "fuzz seed file is valid (%s)", rc ? rs_last_error() : "ok");
    st_close(s);
    rs_rng *r = rs_rng_alloc(2024, 77);
    const int iters = 3000;
    int n_ok = 0, n_err = 0, bad = 0;
    const size_t hlen = strlen(hdr);
    for (int it = 0; it < iters; it++) {
        memcpy(buf, orig, n);
        int flips = 1 + (int)rs_rng_uint(r, 3);
        for (int f = 0; f < flips; f++) {
            /* mostly inside the header, sometimes the length field or the data */
            size_t pos = rs_rng_uniform(r) < 0.9 ? 8 + rs_rng_uint(r, hlen) : rs_rng_uint(r, n);
            unsigned long kind = rs_rng_uint(r, 4);
            if (kind == 0) buf[pos] ^= (unsigned char)(1u << rs_rng_uint(r, 8));
            else if (kind == 1) buf[pos] = (unsigned char)rs_rng_uint(r, 256);
            else if (kind == 2) buf[pos] = (unsigned char)"0123456789[]{},:\"-.e"[rs_rng_uint(r, 20)];
            else buf[pos] = (unsigned char)('0' + rs_rng_uint(r, 10));
        }
        size_t len = rs_rng_uniform(r) < 0.05 ? rs_rng_uint(r, n + 1) : n;
        write_bytes(q, buf, len);
        rc = st_open(&s, q);
        if (rc == RS_OK) {
            n_ok++;
            uint64_t hl = 0;
            for (int i = 7; i >= 0; i--) hl = hl << 8 | buf[i];
            size_t covered = 0;
            for (size_t i = 0; i < st_count(s); i++) {
                const st_tensor *t = st_get(s, i);
                int ok = t->offset >= 8 + hl && t->offset <= len && t->nbytes <= len - t->offset &&
                         st_find(s, t->name) == t;
                if (ok && (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16 || t->dtype == ST_F64)) {
                    float *x = malloc((t->nelem ? t->nelem : 1) * sizeof *x);
                    ok = st_read_f32(t, x) == RS_OK;
                    free(x);
                }
                covered += t->nbytes;
                if (!ok) bad++;
            }
            if (covered != len - 8 - hl) bad++;
            st_close(s);
        } else {
            n_err++;
            if (s != NULL || (rc != RS_EINVAL && rc != RS_EIO) || !strstr(rs_last_error(), "mut.safetensors")) {
                if (bad++ < 5) printf("  iteration %d: status %d, message '%s'\n", it, rc, rs_last_error());
            }
        }
    }
    rs_rng_free(r);
    CHECK(bad == 0, "fuzz: %d byte-flipped files, %d opened with every tensor in bounds and the data tiled, %d "
                    "rejected with EINVAL/EIO naming the file; %d inconsistencies",
          iters, n_ok, n_err, bad);
    CHECK(n_ok > 50 && n_err > 1000, "fuzz reaches both outcomes (%d ok, %d errors)", n_ok, n_err);
    free(orig);
    free(buf);
    unlink(p);
    unlink(q);
}

int main(void)
{
    char templ[] = "/tmp/rs_test_st_XXXXXX";
    tmpdir = mkdtemp(templ);
    CHECK(tmpdir != NULL, "mkdtemp");
    if (!tmpdir) return check_summary("test_safetensors");
    test_roundtrip();
    test_int_dtypes();
    test_conversions();
    test_torch_fixture();
    test_shards();
    test_corrupt();
    test_truncation();
    test_fuzz();
    if (rmdir(tmpdir) != 0) CHECK(0, "temp folder %s is empty at the end", tmpdir);
    return check_summary("test_safetensors");
}
