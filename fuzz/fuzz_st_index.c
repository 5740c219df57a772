/* Fuzz the sharded safetensors reader: the input is a model.safetensors.index.json, then
 * optionally FUZZ_SEP and the bytes of shard "s1.safetensors"; shard "s0.safetensors" is the
 * fixture tests/fixtures/st/torch.safetensors. */
#include "fuzz/fuzz_util.h"
#include "llm/io/safetensors.h"

static unsigned char *shard0;
static size_t shard0_n;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    FILE *f = fopen("tests/fixtures/st/torch.safetensors", "rb");
    if (!f) {
        fprintf(stderr, "fuzz_st_index: run from the repository root (tests/fixtures/st/torch.safetensors)\n");
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    shard0_n = (size_t)ftell(f);
    rewind(f);
    shard0 = malloc(shard0_n);
    if (!shard0 || fread(shard0, 1, shard0_n, f) != shard0_n) exit(1);
    fclose(f);
    fuzz_write(1, "s0.safetensors", shard0, shard0_n);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *a, *b;
    size_t an, bn;
    fuzz_split(data, size, &a, &an, &b, &bn);
    char s1[512];
    snprintf(s1, sizeof s1, "%s/s1.safetensors", fuzz_dir());
    if (b) fuzz_write(1, "s1.safetensors", b, bn);
    else unlink(s1);
    const char *p = fuzz_write(0, "model.safetensors.index.json", a, an);
    st_set *s = NULL;
    if (st_open(&s, p) == 0) {
        for (size_t i = 0; i < st_count(s); i++) {
            const st_tensor *t = st_get(s, i);
            (void)st_find(s, t->name);
            (void)st_file_name(s, t->file);
        }
    }
    st_close(s);
    return 0;
}
