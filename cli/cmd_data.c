/* rostesim data: data sets built on the machine itself (debian-tldr). Thin: read the
 * files, call llm/tldr, write the splits and a manifest. Exit codes: 0 success, 1 runtime
 * failure, 2 usage error. */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "llm/train/tldr.h"
#include "quant/fsutil.h"
#include "quant/status.h"
#include "sim/lsq_out.h"

#define APT_LISTS "/var/lib/apt/lists"
#define APT_HELPER "/usr/lib/apt/apt-helper"

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

/* Whole file in memory; compressed apt lists go through apt-helper cat-file. */
static int read_input(const char *cmd, const char *path, char **buf, size_t *len)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return cli_error(cmd, "cannot read '%s': %s", path, strerror(errno)), 1;
    int compressed = ends_with(path, ".lz4") || ends_with(path, ".gz") || ends_with(path, ".xz") ||
                     ends_with(path, ".zst") || ends_with(path, ".bz2");
    FILE *f;
    if (compressed) {
        if (strchr(path, '\'')) return cli_error(cmd, "'%s': quote in the file name", path), 1;
        char c[4400];
        snprintf(c, sizeof c, APT_HELPER " cat-file '%s'", path);
        f = popen(c, "r");
    } else {
        f = fopen(path, "rb");
    }
    if (!f) return cli_error(cmd, "cannot open '%s': %s", path, strerror(errno)), 1;
    size_t cap = 1 << 20, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n == cap) {
            char *p = realloc(b, cap *= 2);
            if (!p) { free(b); b = NULL; break; }
            b = p;
        }
        size_t k = fread(b + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f);
    int st = compressed ? pclose(f) : fclose(f);
    if (!b) return cli_error(cmd, "%s: out of memory", path), 1;
    if (bad || st != 0) {
        free(b);
        return cli_error(cmd, "%s: read failed%s", path, compressed ? " (" APT_HELPER " cat-file)" : ""), 1;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* The main suite's file of an apt list (no "-updates", "-security", "-backports"). */
static int find_list(const char *pattern, char *out, size_t cap)
{
    glob_t g;
    int found = 0;
    if (glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc && !found; i++) {
            const char *d = strstr(g.gl_pathv[i], "_dists_");
            if (!d) continue;
            const char *e = strchr(d + 7, '_');
            if (!e || memchr(d + 7, '-', (size_t)(e - d - 7))) continue;
            snprintf(out, cap, "%s", g.gl_pathv[i]);
            found = 1;
        }
        globfree(&g);
    }
    return found;
}

/* JSONL pairs of a split, or (text) its long descriptions one blank line apart */
static int write_split(const char *cmd, const char *dir, const char *name, const tldr_set *s, int split, int text,
                       char sha[65], size_t *bytes)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = rs_atomic_open(path, tmp, sizeof tmp);
    if (!f) return cli_error(cmd, "cannot create '%s': %s", path, strerror(errno)), 1;
    tldr_sha256 h;
    tldr_sha256_init(&h);
    *bytes = 0;
    for (size_t i = 0; i < s->n; i++) {
        const tldr_entry *e = &s->e[i];
        if (e->split != split) continue;
        char *line;
        size_t n;
        if (!text) {
            line = tldr_jsonl(e);
            if (!line) { fclose(f); remove(tmp); return cli_error(cmd, "out of memory"), 1; }
            n = strlen(line);
        } else {
            n = strlen(e->desc);
            line = malloc(n + 3);
            if (!line) { fclose(f); remove(tmp); return cli_error(cmd, "out of memory"), 1; }
            memcpy(line, e->desc, n);
            memcpy(line + n, "\n\n", 3);
            n += 2;
        }
        fwrite(line, 1, n, f);
        tldr_sha256_update(&h, line, n);
        *bytes += n;
        free(line);
    }
    tldr_sha256_final(&h, sha);
    if (rs_atomic_close(f, tmp, path) != 0) return cli_error(cmd, "cannot write '%s'", path), 1;
    return 0;
}

static int cmd_data_debian_tldr(int argc, char **argv)
{
    const char *C = "data debian-tldr";
    const char *out = NULL, *trans = NULL, *pkgs = NULL;
    cli_opt opts[] = {
        {"--out", OPT_STRING, &out, 0, -1, "DIR", "output folder (required)", 0},
        {"--translation", OPT_STRING, &trans, 0, -1, "FILE",
         "Translation-en file (.lz4 read through apt-helper); default: the main suite's in " APT_LISTS, 0},
        {"--packages", OPT_STRING, &pkgs, 0, -1, "FILE",
         "Packages file giving each package's source; 'none': package names only; default: " APT_LISTS, 0},
    };
    cli_cmd cmd = {C, "--out DIR [--translation FILE] [--packages FILE]",
                   "Build the Debian TL;DR data set: (long package description -> synopsis) pairs from\n"
                   "Debian's Translation-en, cleaned (description format undone, whitespace collapsed),\n"
                   "filtered (empty, boilerplate, transitional/dummy, fewer than 8 words), deduplicated\n"
                   "(exact, and near-duplicate siblings: word-set Jaccard >= 0.8 within a family of\n"
                   "packages sharing a source or a first paragraph) and split 90/5/5 by family, so no\n"
                   "source package crosses splits. Writes train.jsonl, validation.jsonl, test.jsonl\n"
                   "({\"prompt\": \"Package: NAME\\nDESCRIPTION\\nTL;DR:\", \"completion\": \" SYNOPSIS\"}),\n"
                   "pretrain.txt and pretrain_validation.txt (the train / validation long descriptions, for\n"
                   "the tokenizer and the base model: nothing from validation or test leaks into them) and\n"
                   "manifest.json (counts, sha256 of the inputs and of every file). Deterministic.",
                   opts, sizeof opts / sizeof opts[0], 0, 0,
                   "The Translation-en file comes with English translations in apt's lists:\n"
                   "  apt-get update -o Acquire::Languages=en\n"
                   "example:\n  rostesim data debian-tldr --out data/debian-tldr"};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    if (!out) return cli_error(C, "--out DIR is required (see --help)"), 2;
    char tpath[4200], ppath[4200];
    if (!trans) {
        if (!find_list(APT_LISTS "/*_dists_*_main_i18n_Translation-en*", tpath, sizeof tpath))
            return cli_error(C, "no Translation-en in " APT_LISTS "; run 'apt-get update -o Acquire::Languages=en' "
                                "(as root) or give --translation FILE"), 1;
        trans = tpath;
    }
    if (!pkgs) {
        if (find_list(APT_LISTS "/*_dists_*_main_binary-*_Packages*", ppath, sizeof ppath)) pkgs = ppath;
        else pkgs = "none";
    }
    char *tb = NULL, *pb = NULL;
    size_t tn = 0, pn = 0;
    int rc = read_input(C, trans, &tb, &tn);
    if (rc) return rc;
    if (strcmp(pkgs, "none") && (rc = read_input(C, pkgs, &pb, &pn))) { free(tb); return rc; }
    char tsha[65], psha[65] = "";
    tldr_sha256_hex(tb, tn, tsha);
    if (pb) tldr_sha256_hex(pb, pn, psha);
    tldr_set s;
    if (tldr_parse(&s, tb, tn, trans) != RS_OK) {
        free(tb);
        free(pb);
        return cli_error(C, "%s", rs_last_error()), 1;
    }
    free(tb);
    if (pb && tldr_set_sources(&s, pb, pn, pkgs) != RS_OK) rc = 1;
    free(pb);
    if (!rc && tldr_build(&s) != RS_OK) rc = 1;
    if (rc) {
        tldr_free(&s);
        return cli_error(C, "%s", rs_last_error()), 1;
    }
    if (rs_mkdir_p(out) != 0) {
        tldr_free(&s);
        return cli_error(C, "%s", rs_last_error()), 1;
    }
    static const char *names[5] = {"train.jsonl", "validation.jsonl", "test.jsonl", "pretrain.txt",
                                   "pretrain_validation.txt"};
    char sha[5][65];
    size_t bytes[5];
    for (int k = 0; k < 5 && !rc; k++)
        rc = write_split(C, out, names[k], &s, k < 3 ? k : k - 3, k >= 3, sha[k], &bytes[k]);
    if (!rc) {
        char path[4200], tmp[4300];
        snprintf(path, sizeof path, "%s/manifest.json", out);
        FILE *f = rs_atomic_open(path, tmp, sizeof tmp);
        if (!f) { cli_error(C, "cannot create '%s': %s", path, strerror(errno)); rc = 1; }
        else {
            fprintf(f, "{\n  \"dataset\": \"debian-tldr\",\n  \"version\": 1,\n");
            fprintf(f, "  \"input\": {\"translation_sha256\": \"%s\", \"translation_bytes\": %zu, "
                       "\"packages_sha256\": \"%s\", \"packages_bytes\": %zu},\n", tsha, tn, psha, pn);
            fprintf(f, "  \"entries\": %zu,\n  \"source_from_packages\": %zu,\n", s.n, s.n_source_found);
            fprintf(f, "  \"dropped\": {\"empty\": %zu, \"boilerplate\": %zu, \"short\": %zu, \"exact_duplicate\": %zu, "
                       "\"near_duplicate\": %zu},\n", s.n_empty, s.n_boiler, s.n_short, s.n_exact, s.n_near);
            fprintf(f, "  \"families\": %zu,\n  \"files\": {\n", s.n_families);
            for (int k = 0; k < 5; k++) {
                size_t cnt = k < 3 ? s.n_split[k] : s.n_split[k - 3];
                fprintf(f, "    \"%s\": {\"%s\": %zu, \"bytes\": %zu, \"sha256\": \"%s\"}%s\n", names[k],
                        k < 3 ? "pairs" : "descriptions", cnt, bytes[k], sha[k], k < 4 ? "," : "");
            }
            fprintf(f, "  }\n}\n");
            if (rs_atomic_close(f, tmp, path) != 0) { cli_error(C, "cannot write '%s'", path); rc = 1; }
        }
    }
    if (!rc) {
        printf("read %s: %zu entries (sources from %s: %zu)\n", trans, s.n, pkgs, s.n_source_found);
        printf("dropped: %zu empty, %zu boilerplate, %zu short, %zu exact duplicates, %zu near-duplicates\n",
               s.n_empty, s.n_boiler, s.n_short, s.n_exact, s.n_near);
        printf("kept %zu pairs in %zu families: train %zu, validation %zu, test %zu\n",
               s.n_split[0] + s.n_split[1] + s.n_split[2], s.n_families, s.n_split[0], s.n_split[1], s.n_split[2]);
        printf("wrote %s/{train,validation,test}.jsonl, pretrain{,_validation}.txt, manifest.json\n", out);
    }
    tldr_free(&s);
    return rc;
}

static const cli_sub subs[] = {
    {"debian-tldr", cmd_data_debian_tldr, "TL;DR pairs (long description -> synopsis) from Debian's package descriptions"},
};

int cmd_data(int argc, char **argv)
{
    return cli_dispatch("data", "Data sets built from what the machine itself has (no hub needed).", subs,
                        sizeof subs / sizeof subs[0], argc, argv);
}
