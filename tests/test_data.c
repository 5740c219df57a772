/* SFT data: JSONL parsing, completion-only masking, truncation, padding, plain-text
 * blocks, malformed lines (with line numbers), empty data, vocabulary checks, special ids.
 *
 * The tokenizer is a byte-level BPE without merges built here in memory: token id = byte
 * value, plus "<|endoftext|>" = 256, so every expected id list is written by hand. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm/train/data.h"
#include "quant/status.h"
#include "tests/check.h"

enum { EOS = 256 };

/* GPT-2 bytes_to_unicode: the code point that stands for byte b. */
static int byte_cp(int b)
{
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    int n = 0;
    for (int k = 0; k < b; k++)
        if (!((k >= '!' && k <= '~') || (k >= 0xA1 && k <= 0xAC) || (k >= 0xAE && k <= 0xFF))) n++;
    return 256 + n;
}

static char *put_utf8(char *p, int cp)
{
    if (cp < 0x80) *p++ = (char)cp;
    else if (cp < 0x800) {
        *p++ = (char)(0xC0 | (cp >> 6));
        *p++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *p++ = (char)(0xE0 | (cp >> 12));
        *p++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *p++ = (char)(0x80 | (cp & 0x3F));
    }
    return p;
}

static char *byte_tokenizer_json(void)
{
    char *buf = malloc(32768), *p = buf;
    p += sprintf(p, "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": ["
                    "{\"id\": 256, \"content\": \"<|endoftext|>\", \"single_word\": false, \"lstrip\": false, "
                    "\"rstrip\": false, \"normalized\": false, \"special\": true}], \"normalizer\": null, "
                    "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, "
                    "\"use_regex\": true}, \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                    "\"trim_offsets\": true, \"use_regex\": true}, \"decoder\": {\"type\": \"ByteLevel\", "
                    "\"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}, \"model\": {\"type\": "
                    "\"BPE\", \"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": null, "
                    "\"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false, \"vocab\": {");
    for (int b = 0; b < 256; b++) {
        int cp = byte_cp(b);
        *p++ = '"';
        if (cp == '"' || cp == '\\') *p++ = '\\';
        p = put_utf8(p, cp);
        p += sprintf(p, "\": %d, ", b);
    }
    p += sprintf(p, "\"<|endoftext|>\": 256}, \"merges\": []}}");
    return buf;
}

static tok_tokenizer *tok;

static int has(const char *needle) { return strstr(rs_last_error(), needle) != NULL; }

static llm_dataset *parse(const char *text, llm_data_kind kind, int max_len, int full_loss, int *st)
{
    llm_dataset *ds = NULL;
    llm_data_opts o = {max_len, full_loss, EOS};
    *st = llm_data_parse(&ds, text, strlen(text), kind, "mem.jsonl", tok, &o);
    return ds;
}

static int row_is(const llm_dataset *ds, size_t r, const int32_t *ids, const int32_t *tgt, size_t L)
{
    if (r >= ds->n || ds->off[r + 1] - ds->off[r] != L) return 0;
    return !memcmp(ds->ids + ds->off[r], ids, L * sizeof *ids) && !memcmp(ds->tgt + ds->off[r], tgt, L * sizeof *tgt);
}

#define IG LLM_IGNORE

static void test_jsonl(void)
{
    int st;
    const char *txt = "{\"prompt\": \"ab\", \"completion\": \"cd\"}\n"
                      "\n"
                      "   \n"
                      "{\"completion\": \"z\", \"prompt\": \"xy\", \"extra\": 1}\r\n";
    llm_dataset *ds = parse(txt, LLM_DATA_JSONL, 16, 0, &st);
    CHECK(st == RS_OK && ds && ds->n == 2, "two JSONL rows (blank lines skipped, CRLF, extra fields ignored): %s",
          rs_last_error());
    if (!ds) return;
    int32_t i0[] = {'a', 'b', 'c', 'd', EOS}, t0[] = {IG, 'c', 'd', EOS, IG};
    CHECK(row_is(ds, 0, i0, t0, 5), "row 0: prompt ++ completion ++ eos, loss on completion and eos only");
    int32_t i1[] = {'x', 'y', 'z', EOS}, t1[] = {IG, 'z', EOS, IG};
    CHECK(row_is(ds, 1, i1, t1, 4), "row 1 (fields in the other order)");
    CHECK(ds->line[0] == 1 && ds->line[1] == 4, "rows remember their lines (%zu, %zu)", ds->line[0], ds->line[1]);
    CHECK(ds->ntok == 5 && ds->max_row == 5, "5 target tokens, longest row 5 (%zu, %d)", ds->ntok, ds->max_row);
    CHECK(ds->nread == 2 && ds->ntrunc == 0 && ds->nskip == 0, "counts read/truncated/skipped");
    uint64_t h = ds->tok_hash, fh = ds->file_hash;
    llm_data_free(ds);

    ds = parse(txt, LLM_DATA_JSONL, 16, 1, &st);
    int32_t f0[] = {'b', 'c', 'd', EOS, IG};
    CHECK(st == RS_OK && row_is(ds, 0, i0, f0, 5), "--full-loss: every next token is a target");
    CHECK(ds && ds->tok_hash != h && ds->file_hash == fh, "full loss changes the token hash, not the file hash");
    llm_data_free(ds);

    /* truncation keeps the start; the eos and the completion's end are cut */
    ds = parse("{\"prompt\": \"ab\", \"completion\": \"cdef\"}\n", LLM_DATA_JSONL, 4, 0, &st);
    int32_t i2[] = {'a', 'b', 'c', 'd'}, t2[] = {IG, 'c', 'd', IG};
    CHECK(st == RS_OK && ds && row_is(ds, 0, i2, t2, 4) && ds->ntrunc == 1, "truncation to max_len keeps the first tokens");
    llm_data_free(ds);

    /* a prompt that fills max_len leaves no completion: skipped and counted */
    ds = parse("{\"prompt\": \"abcd\", \"completion\": \"e\"}\n{\"prompt\": \"abc\", \"completion\": \"d\"}\n"
               "{\"prompt\": \"a\", \"completion\": \"b\"}\n",
               LLM_DATA_JSONL, 4, 0, &st);
    int32_t i3[] = {'a', 'b', 'c', 'd'}, t3[] = {IG, IG, 'd', IG};
    int32_t i4[] = {'a', 'b', EOS}, t4[] = {'b', EOS, IG};
    CHECK(st == RS_OK && ds && ds->n == 2 && ds->nskip == 1 && ds->ntrunc == 2 && ds->nread == 3,
          "completion cut entirely: skipped (n %zu, skip %zu, trunc %zu)", ds ? ds->n : 0, ds ? ds->nskip : 0,
          ds ? ds->ntrunc : 0);
    CHECK(ds && row_is(ds, 0, i3, t3, 4) && row_is(ds, 1, i4, t4, 3) && ds->line[0] == 2 && ds->line[1] == 3,
          "the kept rows, one completion token left in the first");
    llm_data_free(ds);

    /* every example skipped: an empty data set, with advice */
    ds = parse("{\"prompt\": \"abcdef\", \"completion\": \"g\"}\n", LLM_DATA_JSONL, 4, 0, &st);
    CHECK(st == RS_EINVAL && !ds && has("all 1 examples were skipped") && has("--max-len"),
          "all skipped -> error: %s", rs_last_error());

    /* UTF-8 text and escapes round through the tokenizer as bytes */
    ds = parse("{\"prompt\": \"\\u00e9\", \"completion\": \"\xc3\xa9\"}\n", LLM_DATA_JSONL, 16, 0, &st);
    int32_t i5[] = {0xC3, 0xA9, 0xC3, 0xA9, EOS}, t5[] = {IG, 0xC3, 0xA9, EOS, IG};
    CHECK(st == RS_OK && ds && row_is(ds, 0, i5, t5, 5), "escaped and raw UTF-8 give the same bytes");
    llm_data_free(ds);
}

static void test_malformed(void)
{
    struct {
        const char *text, *what, *want;
    } cases[] = {
        {"{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\", \"completion\": \"b\"\n", "unterminated object",
         "mem.jsonl:2: invalid JSON"},
        {"{\"prompt\": \"a\", \"completion\": \"b\"}\n\n{\"prompt\": \"a\"}\n", "missing completion",
         "mem.jsonl:3: missing \"completion\""},
        {"{\"prompt\": 5, \"completion\": \"b\"}\n", "number prompt", "mem.jsonl:1: \"prompt\" is not a string"},
        {"{\"prompt\": \"a\", \"completion\": null}\n", "null completion", "mem.jsonl:1: \"completion\" is not a string"},
        {"{\"prompt\": \"a\", \"completion\": \"b\"}\n[1, 2]\n", "array line", "mem.jsonl:2: expected a JSON object"},
        {"{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\xff\", \"completion\": \"b\"}\n", "invalid UTF-8",
         "mem.jsonl:2: invalid UTF-8 at byte 14"},
        {"{\"prompt\": \"a\", \"completion\": \"b\"} {\"prompt\": \"c\"}\n", "two objects on a line",
         "mem.jsonl:1: text after the JSON object"},
        {"not json\n", "plain text in a .jsonl", "mem.jsonl:1: invalid JSON"},
        {"", "empty file", "empty data set"},
        {"\n  \n\n", "only blank lines", "empty data set"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int st;
        llm_dataset *ds = parse(cases[k].text, LLM_DATA_JSONL, 16, 0, &st);
        CHECK(st != RS_OK && !ds && has(cases[k].want), "%s -> error '%s' (want '%s')", cases[k].what, rs_last_error(),
              cases[k].want);
        llm_data_free(ds);
    }
    /* the same through a file: the message names the path */
    char path[] = "/tmp/rs_test_data_XXXXXX.jsonl";
    int fd = mkstemps(path, 6);
    const char *bad = "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\", \"completion\": \"b\"}\n{oops}\n";
    CHECK(fd >= 0 && write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad), "temporary JSONL file");
    if (fd >= 0) close(fd);
    llm_dataset *ds = NULL;
    llm_data_opts o = {16, 0, EOS};
    int st = llm_data_load(&ds, path, tok, &o);
    char want[128];
    snprintf(want, sizeof want, "%s:3: invalid JSON", path);
    CHECK(st == RS_EINVAL && !ds && has(want), "file error names path and line: %s", rs_last_error());
    unlink(path);
    st = llm_data_load(&ds, "/nonexistent/x.jsonl", tok, &o);
    CHECK(st == RS_EIO && has("/nonexistent/x.jsonl"), "missing file: %s", rs_last_error());
    st = llm_data_load(&ds, "/tmp/data.csv", tok, &o);
    CHECK(st == RS_EINVAL && has("unknown data format"), "unknown extension: %s", rs_last_error());
    llm_data_opts noeos = {16, 0, -1};
    st = llm_data_parse(&ds, "{}", 2, LLM_DATA_JSONL, "x.jsonl", tok, &noeos);
    CHECK(st == RS_EINVAL && has("no eos token"), "JSONL needs an eos: %s", rs_last_error());
}

static void test_text(void)
{
    int st;
    llm_dataset *ds = parse("abcdefg", LLM_DATA_TEXT, 3, 0, &st);
    CHECK(st == RS_OK && ds && ds->n == 2 && ds->nskip == 1 && ds->nread == 3, "7 tokens in blocks of 3: 2 rows, the 1-token tail dropped");
    if (ds) {
        int32_t i0[] = {'a', 'b', 'c'}, t0[] = {'b', 'c', IG}, i1[] = {'d', 'e', 'f'}, t1[] = {'e', 'f', IG};
        CHECK(row_is(ds, 0, i0, t0, 3) && row_is(ds, 1, i1, t1, 3), "text blocks: every next token in the loss");
        CHECK(ds->ntok == 4, "4 targets (%zu)", ds->ntok);
    }
    llm_data_free(ds);
    ds = parse("abcdefgh", LLM_DATA_TEXT, 3, 0, &st);
    int32_t i2[] = {'g', 'h'}, t2[] = {'h', IG};
    CHECK(st == RS_OK && ds && ds->n == 3 && row_is(ds, 2, i2, t2, 2), "a 2-token tail is kept");
    llm_data_free(ds);
    ds = parse("ab\ncd\xfe", LLM_DATA_TEXT, 3, 0, &st);
    CHECK(st == RS_EINVAL && has(":2: invalid UTF-8 at byte 3"), "invalid UTF-8 in text names line and byte: %s",
          rs_last_error());
    llm_data_free(ds);
    ds = parse("", LLM_DATA_TEXT, 3, 0, &st);
    CHECK(st == RS_EINVAL && has("empty data set"), "empty text: %s", rs_last_error());
}

static void test_batch(void)
{
    int st;
    llm_dataset *ds = parse("{\"prompt\": \"ab\", \"completion\": \"cd\"}\n{\"prompt\": \"x\", \"completion\": \"y\"}\n",
                            LLM_DATA_JSONL, 16, 0, &st);
    if (!ds) {
        CHECK(0, "batch data set: %s", rs_last_error());
        return;
    }
    int32_t tok2[2 * 5], tgt2[2 * 5];
    size_t idx[2] = {1, 0};
    int T = 0, nt = 0;
    llm_data_batch(ds, idx, 2, 7, tok2, tgt2, &T, &nt);
    int32_t et[] = {'x', 'y', EOS, 7, 7, 'a', 'b', 'c', 'd', EOS};
    int32_t eg[] = {'y', EOS, IG, IG, IG, IG, 'c', 'd', EOS, IG};
    CHECK(T == 5 && nt == 5, "padded to the longest row (T %d, %d targets)", T, nt);
    CHECK(!memcmp(tok2, et, sizeof et) && !memcmp(tgt2, eg, sizeof eg), "pads carry the pad id and target -100");
    size_t one = 1;
    llm_data_batch(ds, &one, 1, 7, tok2, tgt2, &T, &nt);
    CHECK(T == 3 && nt == 2 && llm_data_count(ds, idx, 2) == 5 && llm_data_count(ds, &one, 1) == 2,
          "a single short row is not padded; counts");

    st = llm_data_check_vocab(ds, 300, 7, "tok/tokenizer.json", "mymodel");
    CHECK(st == RS_OK, "ids inside a vocab of 300");
    st = llm_data_check_vocab(ds, 200, 7, "tok/tokenizer.json", "mymodel");
    CHECK(st == RS_EINVAL && has("token id 256") && has("tok/tokenizer.json") && has("mymodel") && has("mem.jsonl:1"),
          "id >= vocab names tokenizer, model, id and line: %s", rs_last_error());
    st = llm_data_check_vocab(ds, 256, 300, "t", "m");
    CHECK(st == RS_EINVAL && has("pad token id 300"), "pad id >= vocab: %s", rs_last_error());
    llm_data_free(ds);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_special(void)
{
    char dir[] = "/tmp/rs_test_special_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "temporary folder");
    char p[256];
    llm_config c;
    memset(&c, 0, sizeof c);
    c.bos_id = c.eos_id = c.pad_id = -1;
    int eos, pad;
    int st = llm_special_ids(&c, dir, tok, &eos, &pad);
    CHECK(st == RS_OK && eos == -1 && pad == -1, "nothing names eos/pad: -1");
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    write_file(p, "{\"eos_token\": \"<|endoftext|>\", \"pad_token\": null}");
    st = llm_special_ids(&c, dir, tok, &eos, &pad);
    CHECK(st == RS_OK && eos == 256 && pad == 256, "eos from tokenizer_config.json, pad falls back to eos (%d %d)", eos, pad);
    write_file(p, "{\"eos_token\": {\"content\": \"<|endoftext|>\"}, \"pad_token\": \"!\"}");
    st = llm_special_ids(&c, dir, tok, &eos, &pad);
    CHECK(st == RS_OK && eos == 256 && pad == '!', "AddedToken objects and a pad token (%d %d)", eos, pad);
    c.eos_id = 5;
    c.pad_id = 6;
    st = llm_special_ids(&c, dir, tok, &eos, &pad);
    CHECK(st == RS_OK && eos == 5 && pad == 6, "config ids win");
    c.eos_id = c.pad_id = -1;
    write_file(p, "{\"eos_token\": \"<|nope|>\"}");
    st = llm_special_ids(&c, dir, tok, &eos, &pad);
    CHECK(st == RS_EINVAL && has("<|nope|>"), "unknown token named: %s", rs_last_error());
    write_file(p, "{\"eos_token\": ");
    st = llm_special_ids(&c, dir, tok, &eos, &pad);
    CHECK(st == RS_EINVAL && has("tokenizer_config.json: invalid JSON"), "bad JSON: %s", rs_last_error());
    unlink(p);
    rmdir(dir);
}

int main(void)
{
    char *json = byte_tokenizer_json();
    int st = tok_parse(&tok, json, strlen(json), "bytes-tokenizer");
    free(json);
    CHECK(st == RS_OK && tok && tok_vocab_size(tok) == 257, "byte tokenizer (%s)", rs_last_error());
    if (st != RS_OK) return check_summary("test_data");
    int32_t *ids = NULL;
    size_t n = 0;
    st = tok_encode(tok, "ab c", 4, TOK_ADD_SPECIAL, &ids, &n);
    CHECK(st == RS_OK && n == 4 && ids[0] == 'a' && ids[2] == ' ', "byte tokenizer: one token per byte");
    free(ids);
    test_jsonl();
    test_malformed();
    test_text();
    test_batch();
    test_special();
    tok_free(tok);
    return check_summary("test_data");
}
