/* Fuzz the tokenizer.json loader: the input is a tokenizer.json, optionally followed by
 * FUZZ_SEP and a text; a loaded tokenizer encodes the text (or a fixed sample) with and
 * without special tokens, decodes the ids, and pre-tokenizes. */
#include "fuzz/fuzz_util.h"
#include "llm/text/tokenizer.h"

static int count_piece(void *ctx, const char *piece, size_t len)
{
    (void)piece;
    *(size_t *)ctx += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *a, *b;
    size_t an, bn;
    fuzz_split(data, size, &a, &an, &b, &bn);
    static const char sample[] = "Hello, world! It's 2026 -- naïve café 東京 <|endoftext|>  tabs\tand\nlines 12345";
    const char *text = b ? (const char *)b : sample;
    size_t tlen = b ? bn : sizeof sample - 1;
    if (tlen > 4096) tlen = 4096;
    tok_tokenizer *t = NULL;
    if (tok_parse(&t, (const char *)a, an, "fuzz.json") == 0) {
        for (int flags = 0; flags <= TOK_ADD_SPECIAL; flags++) {
            int32_t *ids = NULL;
            size_t n = 0;
            if (tok_encode(t, text, tlen, flags, &ids, &n) == 0) {
                char *out = NULL;
                size_t len = 0;
                if (tok_decode(t, ids, n, flags, &out, &len) == 0) free(out);
            }
            free(ids);
        }
        size_t total = 0;
        (void)tok_pretokenize(t, text, tlen, count_piece, &total);
        int nv = tok_vocab_size(t);
        int32_t probe[4] = {0, nv - 1, nv, -1};
        char *out = NULL;
        size_t len = 0;
        if (tok_decode(t, probe, 4, 0, &out, &len) == 0) free(out);
        for (int i = -1; i < nv && i < 300; i++) {
            const char *s = tok_token_str(t, i);
            if (s) (void)tok_token_id(t, s);
            (void)tok_is_special(t, i);
        }
    }
    tok_free(t);
    return 0;
}
