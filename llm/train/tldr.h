/* rostesim LLM: the Debian TL;DR data set (long package description -> synopsis).
 *
 * Input: Debian's Translation-en file (stanzas of "Package:", "Description-md5:",
 * "Description-en: <synopsis>" and the long description in continuation lines) and,
 * optionally, a Packages file (for each binary package's "Source:"). Text is given in
 * memory; the CLI (`rostesim data debian-tldr`) reads the files.
 *
 * Cleaning (tldr_parse): the Debian description format is undone. Continuation lines start
 * with one space; " ." separates paragraphs; lines starting with two or more spaces are
 * verbatim (bullet lists, tables). A paragraph becomes one line (wrapped lines joined), each
 * verbatim line its own line; whitespace runs collapse to one space; paragraphs and verbatim
 * lines are joined by "\n".
 *
 * Filtering (tldr_build), in this order, each counted:
 *   empty        no synopsis or no long description
 *   boilerplate  dh_make templates ("<insert ..."), transitional and dummy packages
 *   short        long description under TLDR_MIN_WORDS words
 *   exact        same long description as an earlier kept entry (file order)
 *   near         siblings: within a family (below), word-set Jaccard similarity of the long
 *                descriptions >= TLDR_NEAR_JACCARD with an earlier kept member
 * Families: union of "same source package" and "same first paragraph" (of at least
 * TLDR_MIN_WORDS words), so -dev/-doc/-data siblings sharing a template are one family even
 * when they come from different source packages.
 * Split: by family, FNV-1a 64 of the family's smallest source name, mod 100: below 90 train,
 * below 95 validation, else test. No family crosses splits; no randomness. */
#ifndef RS_LLM_TLDR_H
#define RS_LLM_TLDR_H

#include <stddef.h>
#include <stdint.h>

enum { TLDR_TRAIN = 0, TLDR_VALIDATION = 1, TLDR_TEST = 2, TLDR_DROPPED = -1 };
#define TLDR_MIN_WORDS 8
#define TLDR_NEAR_JACCARD 0.8

typedef struct {
    char *package;  /* binary package name */
    char *source;   /* source package (tldr_set_sources), else the package name */
    char *synopsis; /* one line, cleaned */
    char *desc;     /* cleaned long description */
    size_t line;    /* line of the Package: field in the input (1-based) */
    int split;      /* TLDR_TRAIN / VALIDATION / TEST, or TLDR_DROPPED */
    size_t family;  /* index of the family's first entry (after tldr_build) */
} tldr_entry;

typedef struct {
    tldr_entry *e;
    size_t n;
    /* counts after tldr_build */
    size_t n_empty, n_boiler, n_short, n_exact, n_near, n_split[3], n_families;
    size_t n_source_found; /* entries whose source came from the Packages file */
} tldr_set;

/* Parse a Translation-en text (len bytes; `name` prefixes errors, which give the line).
 * Stanzas without Description-en are errors; unknown fields are ignored. */
int tldr_parse(tldr_set *s, const char *text, size_t len, const char *name);
/* Set each entry's source from a Packages text ("Source: name (version)" or no Source:,
 * meaning the package itself). Entries absent from it keep their package name. */
int tldr_set_sources(tldr_set *s, const char *text, size_t len, const char *name);
/* Filter, deduplicate, group into families, split (see above). */
int tldr_build(tldr_set *s);
void tldr_free(tldr_set *s); /* frees the entries; the struct may be reused */

/* One JSONL line (with '\n') for an entry: {"prompt": "Package: <name>\n<desc>\nTL;DR:",
 * "completion": " <synopsis>"}; malloc'ed. */
char *tldr_jsonl(const tldr_entry *e);

/* Clean a long description given in Debian format (continuation lines without their first
 * space being kept, e.g. " line\n .\n  verbatim\n"); malloc'ed. Exposed for tests. */
char *tldr_clean_desc(const char *s, size_t len);

/* SHA-256 of n bytes as 64 lowercase hex digits and a NUL. */
void tldr_sha256_hex(const void *data, size_t n, char hex[65]);
typedef struct { uint32_t h[8]; uint64_t n; unsigned char buf[64]; size_t nb; } tldr_sha256;
void tldr_sha256_init(tldr_sha256 *c);
void tldr_sha256_update(tldr_sha256 *c, const void *data, size_t n);
void tldr_sha256_final(tldr_sha256 *c, char hex[65]);

#endif
