/* Fuzz the SFT data reader: the input as prompt/completion JSONL (and, when short, as a
 * plain-text corpus), tokenized with tests/fixtures/tok/tiny; then batches of its rows. */
#include "fuzz/fuzz_util.h"
#include "fuzz/fuzz_tiny.h"

static tok_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    tok = fuzz_tiny_tokenizer();
    return 0;
}

static void use(llm_dataset *ds)
{
    (void)llm_data_check_vocab(ds, 264, 263, "tok", "model");
    size_t idx[3];
    int32_t *tk = malloc(3 * (size_t)ds->max_row * sizeof *tk), *tg = malloc(3 * (size_t)ds->max_row * sizeof *tg);
    for (size_t a = 0; tk && tg && a < ds->n && a < 30; a += 3) {
        int B = 0;
        for (size_t k = a; k < ds->n && B < 3; k++) idx[B++] = k;
        int T, nt;
        llm_data_batch(ds, idx, B, 263, tk, tg, &T, &nt);
        (void)llm_data_count(ds, idx, (size_t)B);
    }
    free(tk);
    free(tg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llm_data_opts o = {.max_len = 12, .full_loss = (size & 1), .eos_id = 263};
    llm_dataset *ds = NULL;
    if (llm_data_parse(&ds, (const char *)data, size, LLM_DATA_JSONL, "x.jsonl", tok, &o) == 0) use(ds);
    llm_data_free(ds);
    ds = NULL;
    if (size <= 2048 && llm_data_parse(&ds, (const char *)data, size, LLM_DATA_TEXT, "x.txt", tok, &o) == 0) use(ds);
    llm_data_free(ds);
    return 0;
}
