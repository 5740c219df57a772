/* Fuzz the safetensors reader on one file: open, walk every tensor, convert the float ones. */
#include "fuzz/fuzz_util.h"
#include "llm/io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_write(0, "x.safetensors", data, size);
    st_set *s = NULL;
    if (st_open(&s, p) == 0) {
        for (size_t i = 0; i < st_count(s); i++) {
            const st_tensor *t = st_get(s, i);
            if (t->nelem > (1u << 20)) continue;
            float *dst = malloc((t->nelem ? t->nelem : 1) * sizeof *dst);
            if (dst && st_read_f32(t, dst) == 0) {
                volatile float sink = 0;
                for (size_t k = 0; k < t->nelem; k++) sink += dst[k];
                (void)sink;
            }
            free(dst);
            (void)st_find(s, t->name);
        }
        (void)st_metadata(s, 0, "format");
    }
    st_close(s);
    return 0;
}
