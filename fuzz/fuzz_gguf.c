/* Fuzz the GGUF reader and the llama importer: open from memory, read every key with the
 * typed getters, dequantize small tensors, then import the config and the tokenizer. */
#include "fuzz/fuzz_util.h"
#include "llm/io/gguf.h"
#include "llm/import/gguf_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file *g = NULL;
    if (gguf_open_mem(&g, data, size, "x.gguf") == 0) {
        for (size_t i = 0; i < gguf_nkv(g); i++) {
            const gguf_kv *kv = gguf_kv_at(g, i);
            int64_t iv;
            double fv;
            int bv;
            char *sv = NULL;
            const gguf_kv *arr;
            (void)gguf_get_int(g, kv->key, 0, &iv, NULL);
            (void)gguf_get_float(g, kv->key, 0, &fv, NULL);
            (void)gguf_get_bool(g, kv->key, 0, &bv, NULL);
            if (gguf_get_str(g, kv->key, 0, &sv, NULL) == 0) free(sv);
            if (gguf_get_arr(g, kv->key, 0, &arr) == 0 && arr) {
                for (uint64_t k = 0; k < arr->arr_n && k < 64; k++) {
                    if (arr->arr_type == GGUF_STRING) {
                        const char *s;
                        size_t len;
                        gguf_arr_str(g, arr, k, &s, &len);
                    } else if (arr->arr_type != GGUF_F32 && arr->arr_type != GGUF_F64 && arr->arr_type != GGUF_BOOL) {
                        (void)gguf_arr_int(arr, k);
                    }
                }
            }
        }
        for (size_t i = 0; i < gguf_ntensors(g); i++) {
            const gguf_tensor *t = gguf_tensor_at(g, i);
            (void)gguf_find_tensor(g, t->name);
            if (t->nelem > (1u << 18)) continue;
            float *dst = malloc((t->nelem ? t->nelem : 1) * sizeof *dst);
            if (dst) (void)gguf_tensor_to_f32(g, t, dst);
            free(dst);
        }
        llm_config c;
        (void)gguf_import_config(g, &c);
        (void)gguf_import_tokenizer(g, fuzz_dir());
    }
    gguf_close(g);
    return 0;
}
