/* rostesim: llm/train/tldr.c on a committed excerpt of Debian 12's Translation-en and Packages
 * (tests/fixtures/tldr): parsing of the description format, filters, near-duplicate
 * siblings, no family or source crossing splits, determinism; SHA-256 test vectors; the
 * committed sample pairs. Run from the repository root. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/train/tldr.h"
#include "quant/status.h"
#include "tests/check.h"
#include "tests/fixture.h"

#define FX "tests/fixtures/tldr/"

static const tldr_entry *find(const tldr_set *s, const char *pkg)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->e[i].package, pkg)) return &s->e[i];
    return NULL;
}

/* all JSONL lines of every split, concatenated */
static char *dump(const tldr_set *s)
{
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    b[0] = 0;
    for (int sp = 0; sp < 3; sp++)
        for (size_t i = 0; i < s->n; i++) {
            if (s->e[i].split != sp) continue;
            char *l = tldr_jsonl(&s->e[i]);
            size_t k = strlen(l);
            while (n + k + 1 > cap) b = realloc(b, cap *= 2);
            memcpy(b + n, l, k + 1);
            n += k;
            free(l);
        }
    return b;
}

static int build(tldr_set *s, const char *t, size_t tn, const char *p, size_t pn)
{
    int rc = tldr_parse(s, t, tn, "Translation-en.excerpt");
    if (!rc && p) rc = tldr_set_sources(s, p, pn, "Packages.excerpt");
    if (!rc) rc = tldr_build(s);
    return rc;
}

static void test_clean(void)
{
    const char *raw = " First   paragraph\n wrapped\there.\n .\n Second one.\n  * item  one\n  * item two\n .\n";
    char *c = tldr_clean_desc(raw, strlen(raw));
    CHECK(c && !strcmp(c, "First paragraph wrapped here.\nSecond one.\n* item one\n* item two"),
          "description format undone: \"%s\"", c ? c : "(null)");
    free(c);
    c = tldr_clean_desc(" .\n \n", 5);
    CHECK(c && !c[0], "separators alone give an empty description");
    free(c);
}

static void test_sha(void)
{
    char h[65];
    tldr_sha256_hex("abc", 3, h);
    CHECK(!strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256(abc)");
    tldr_sha256_hex("", 0, h);
    CHECK(!strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "sha256('')");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    tldr_sha256_hex(m, strlen(m), h);
    CHECK(!strcmp(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "sha256(448-bit message)");
    tldr_sha256 c;
    tldr_sha256_init(&c);
    for (int i = 0; i < 1000; i++) tldr_sha256_update(&c, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1000);
    tldr_sha256_final(&c, h);
    CHECK(!strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "sha256(10^6 x 'a'), streamed");
}

static void test_errors(void)
{
    tldr_set s;
    const char *a = "Package: foo\nDescription-md5: 00\n\nPackage: bar\nDescription-en: x\n y\n";
    int rc = tldr_parse(&s, a, strlen(a), "t.txt");
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "t.txt:1") && strstr(rs_last_error(), "foo"),
          "a package without Description-en names file:line: %s", rs_last_error());
    const char *b = "Package: foo\nDescription-en: x\n y\n\n no field\n";
    rc = tldr_parse(&s, b, strlen(b), "t.txt");
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "t.txt:5"), "a stray continuation line: %s", rs_last_error());
    const char *c = "Package: foo\nbroken line\n";
    rc = tldr_parse(&s, c, strlen(c), "t.txt");
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "t.txt:2"), "a line that is no field: %s", rs_last_error());
}

int main(void)
{
    test_clean();
    test_sha();
    test_errors();
    size_t tn = 0, pn = 0;
    char *t = fx_read_file(FX "Translation-en.excerpt", &tn), *p = fx_read_file(FX "Packages.excerpt", &pn);
    CHECK(t && p, "fixtures present");
    if (!t || !p) return check_summary("test_tldr");
    tldr_set s, s2;
    int rc = build(&s, t, tn, p, pn);
    CHECK(rc == 0, "excerpt builds %s", rc ? rs_last_error() : "");
    if (rc) return check_summary("test_tldr");
    CHECK(s.n == 159, "159 stanzas parsed (%zu)", s.n);
    CHECK(s.n_source_found == 159, "every package's source found in the Packages excerpt (%zu)", s.n_source_found);
    const tldr_entry *e = find(&s, "0xffff");
    CHECK(e && !strcmp(e->synopsis, "Open Free Fiasco Firmware Flasher") && strstr(e->desc, "Nokia Internet Tablets. Thus") &&
              strstr(e->desc, "not limited to:\n* generating and unpacking FIASCO images on local device\n* editing") &&
              strstr(e->desc, "strings, ...)\nSupported are the Nokia 770"),
          "0xffff: wrapped lines joined, bullets kept one per line, paragraphs on their own lines");
    e = find(&s, "0ad-data");
    const tldr_entry *e0 = find(&s, "0ad");
    CHECK(e && e0 && e0->split >= 0 && e->split == TLDR_DROPPED && e->family == e0->family,
          "0ad-data (another source, same first paragraph) is 0ad's near-duplicate sibling");
    e = find(&s, "acedb-other-belvu");
    CHECK(e && e->split == TLDR_DROPPED, "transitional package dropped");
    CHECK(s.n_boiler >= 3 && s.n_near >= 10 && s.n_exact >= 1, "filters counted: %zu boilerplate, %zu exact, %zu near",
          s.n_boiler, s.n_exact, s.n_near);
    size_t kept = s.n_split[0] + s.n_split[1] + s.n_split[2];
    CHECK(kept + s.n_empty + s.n_boiler + s.n_short + s.n_exact + s.n_near == s.n, "counts add up (%zu kept)", kept);
    CHECK(s.n_split[0] > s.n_split[1] && s.n_split[1] > 0 && s.n_split[2] > 0, "three non-empty splits: %zu/%zu/%zu",
          s.n_split[0], s.n_split[1], s.n_split[2]);
    /* no source and no family in two splits */
    int cross = 0;
    for (size_t i = 0; i < s.n; i++)
        for (size_t j = i + 1; j < s.n; j++) {
            const tldr_entry *a = &s.e[i], *b = &s.e[j];
            if (a->split < 0 || b->split < 0 || a->split == b->split) continue;
            if (!strcmp(a->source, b->source) || a->family == b->family) cross++;
        }
    CHECK(cross == 0, "no source package and no family crosses splits (%d pairs do)", cross);
    /* siblings of a source with several kept packages share the split */
    /* determinism: same input, same bytes; JSONL lines parse and keep the layout */
    char *d1 = dump(&s);
    rc = build(&s2, t, tn, p, pn);
    char *d2 = rc ? NULL : dump(&s2);
    CHECK(d2 && !strcmp(d1, d2), "same input, same JSONL bytes (%zu)", strlen(d1));
    int good = 0, n = 0;
    for (char *l = strtok(d1, "\n"); l; l = strtok(NULL, "\n"), n++) {
        cJSON *o = cJSON_Parse(l);
        const cJSON *pr = cJSON_GetObjectItem(o, "prompt"), *co = cJSON_GetObjectItem(o, "completion");
        good += cJSON_IsString(pr) && cJSON_IsString(co) && !strncmp(pr->valuestring, "Package: ", 9) &&
                strlen(pr->valuestring) > 7 && !strcmp(pr->valuestring + strlen(pr->valuestring) - 7, "\nTL;DR:") &&
                co->valuestring[0] == ' ' && co->valuestring[1] != ' ';
        cJSON_Delete(o);
    }
    CHECK(n == (int)kept && good == n, "%d JSONL lines in the trl-lib/tldr layout (%d good)", n, good);
    free(d1);
    free(d2);
    tldr_free(&s2);
    /* without the Packages file, the source is the package name: families by first paragraph only */
    rc = build(&s2, t, tn, NULL, 0);
    CHECK(rc == 0 && s2.n_source_found == 0 && find(&s2, "0ad-data")->split == TLDR_DROPPED,
          "without Packages: sources default to names, first-paragraph families still hold");
    tldr_free(&s2);
    tldr_free(&s);
    free(t);
    free(p);
    /* the committed sample (a few hundred pairs of the full build) */
    const char *samples[2] = {FX "sample_train.jsonl", FX "sample_test.jsonl"};
    for (int k = 0; k < 2; k++) {
        size_t len;
        char *b = fx_read_file(samples[k], &len);
        int lines = 0, ok = 0;
        for (char *l = b ? strtok(b, "\n") : NULL; l; l = strtok(NULL, "\n"), lines++) {
            cJSON *o = cJSON_Parse(l);
            ok += cJSON_IsString(cJSON_GetObjectItem(o, "prompt")) && cJSON_IsString(cJSON_GetObjectItem(o, "completion"));
            cJSON_Delete(o);
        }
        CHECK(lines >= 50 && ok == lines, "%s: %d pairs", samples[k], lines);
        free(b);
    }
    return check_summary("test_tldr");
}
