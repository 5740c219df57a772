/* Fuzz the rostesim_qat.json loader (llm_qat_load) on a tiny 2-layer GPT-NeoX. */
#include "fuzz/fuzz_util.h"
#include "fuzz/fuzz_tiny.h"
#include "llm/quantize/qat.h"

static llm_model *m;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    m = fuzz_tiny_model();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write(0, LLM_QAT_FILE, data, size);
    (void)llm_qat_load(m, fuzz_dir());
    llm_qat_free(m->qat);
    m->qat = NULL;
    return 0;
}
