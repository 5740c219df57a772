/* rostesim llm import-gguf: a llama.cpp GGUF file (llama architecture, byte-level BPE
 * tokenizer) into a Hugging Face checkpoint folder the other llm subcommands use. */
#include <omp.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "llm/import/gguf_import.h"
#include "quant/status.h"

int cmd_llm_import_gguf(int argc, char **argv)
{
    const char *C = "llm import-gguf";
    const char *out = NULL;
    int threads = 0;
    cli_opt opts[] = {
        {"--out", OPT_STRING, &out, 0, -1, "DIR", "output checkpoint folder (required; created if missing)", 0},
        {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads for dequantization (0: OpenMP default)", 0},
    };
    cli_cmd cmd = {C, "FILE.gguf --out DIR [--threads N]",
                   "Import a GGUF checkpoint (llama.cpp) of the llama architecture: the weights are\n"
                   "dequantized to f32 (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K),\n"
                   "q/k rows are put back in Hugging Face's rotate-half order, and DIR receives\n"
                   "config.json, model.safetensors (F32), tokenizer.json and tokenizer_config.json.\n"
                   "The tokenizer must be byte-level BPE (tokenizer.ggml.model \"gpt2\"); its\n"
                   "pre-tokenizer is chosen from tokenizer.ggml.pre by llama.cpp's names.",
                   opts, sizeof opts / sizeof opts[0], 1, 1,
                   "example:\n  rostesim llm import-gguf SmolLM2-135M-Instruct.Q4_1.gguf --out smollm2\n"
                   "  rostesim llm generate --model smollm2 --prompt $'<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n'"};
    char *pos[1];
    size_t npos = 0;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    if (npos != 1) return cli_error(C, "one GGUF FILE is required (see --help)"), 2;
    if (!out) return cli_error(C, "--out DIR is required (see --help)"), 2;
    struct stat st;
    if (stat(pos[0], &st) != 0 || !S_ISREG(st.st_mode)) return cli_error(C, "cannot read '%s'", pos[0]), 2;
    if (threads > 0) omp_set_num_threads(threads);
    gguf_import_stats s;
    if (gguf_import(pos[0], out, &s) != RS_OK) return cli_error(C, "%s", rs_last_error()), 1;
    printf("wrote %s: %zu parameters from %s (%s); weights %.2f s, tokenizer %.2f s\n", out, s.nparams, pos[0], s.types,
           s.t_weights, s.t_tokenizer);
    return 0;
}
