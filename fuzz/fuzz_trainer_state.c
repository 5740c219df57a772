/* Fuzz the training checkpoint reader (trainer_state.bin, llm_trainer_load) for a tiny
 * model and data set. The first input byte is a control byte: when its bit 0 is set the
 * harness writes the correct FNV-1a checksum over the last 8 bytes, so that mutations reach
 * the checks behind the checksum. */
#include "fuzz/fuzz_util.h"
#include "fuzz/fuzz_tiny.h"
#include "llm/train/train.h"

static llm_model *m;
static llm_dataset *ds;
static llm_trainer *tr;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    m = fuzz_tiny_model();
    tok_tokenizer *t = fuzz_tiny_tokenizer();
    llm_data_opts o = {.max_len = 16, .full_loss = 0, .eos_id = 263};
    llm_train_opts to;
    llm_train_opts_default(&to);
    to.max_steps = 4;
    to.batch = 2;
    to.max_len = 16;
    if (llm_data_load(&ds, "tests/fixtures/sft/train.jsonl", t, &o) || llm_model_alloc_grads(m) ||
        llm_trainer_alloc(&tr, m, ds, 263, &to)) {
        fprintf(stderr, "fuzz_trainer_state: setup failed: %s\n", rs_last_error());
        exit(1);
    }
    tok_free(t);
    /* FUZZ_TRAINER_SEED=path: write a real checkpoint after 2 steps (a seed) and exit */
    const char *seed = getenv("FUZZ_TRAINER_SEED");
    if (seed) {
        int st = llm_trainer_step(tr, NULL);
        if (!st) st = llm_trainer_step(tr, NULL);
        if (!st) st = llm_trainer_save(tr, seed);
        if (st) fprintf(stderr, "fuzz_trainer_state: %s\n", rs_last_error());
        exit(st ? 1 : 0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int fix = data[0] & 1;
    data++, size--;
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    if (fix && size >= 8) {
        uint64_t h = llm_fnv1a(LLM_FNV_INIT, buf, size - 8);
        for (int i = 0; i < 8; i++) buf[size - 8 + i] = (unsigned char)(h >> (8 * i));
    }
    const char *p = fuzz_write(0, "trainer_state.bin", buf, size);
    free(buf);
    (void)llm_trainer_load(tr, p);
    return 0;
}
