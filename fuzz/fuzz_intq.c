/* Fuzz the integer model reader (RSIQ files, llm_intq_load): load; when the file loads and
 * its shapes are small, run a two-token decode on it (embedding, every layer with its packed
 * GEMMs, rotations and packed K/V cache, the head) so that whatever the loader accepted is
 * used. Seeds: fuzz/regress/intq/ (RTN and QuaRot exports of the tiny GPT-NeoX, int8 head). */
#include "fuzz/fuzz_util.h"
#include "llm/quantize/intq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_write(0, "x.rsiq", data, size);
    llm_intq *iq = NULL;
    if (llm_intq_load(&iq, p) == 0) {
        const llm_config *c = llm_intq_config(iq);
        size_t pack = 0, f32 = 0;
        (void)llm_intq_bytes(iq, &pack, &f32);
        if (c->vocab >= 2 && c->vocab <= 8192 && c->d <= 1024 && c->n_layer <= 8 && c->max_pos >= 2) {
            llm_intq_kv *kv = NULL;
            float *logits = malloc(2 * (size_t)c->vocab * sizeof *logits);
            if (logits && llm_intq_kv_alloc(&kv, iq, 2) == 0) {
                int32_t tok[2] = {0, c->vocab - 1};
                if (llm_intq_decode(iq, kv, tok, 2, logits, 1) == 0) {
                    volatile float sink = 0;
                    for (size_t k = 0; k < 2 * (size_t)c->vocab; k++) sink += logits[k];
                    (void)sink;
                }
            }
            llm_intq_kv_free(kv);
            free(logits);
        }
    }
    llm_intq_free(iq);
    return 0;
}
