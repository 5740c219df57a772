/* Tests of llm/io/config.c: the published config.json of six checkpoints (old spelling, and
 * as transformers 5.23 re-saves them with "rope_parameters") against every field read
 * from the models transformers builds from them (tests/fixtures/config/expected.tsv,
 * written by tools/config_fixture.py) and the published parameter counts; save -> parse
 * round trips; defaults; and errors that must name the field. Run from the repository
 * root (or set CONFIG_FIXTURES to the fixture folder). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm/io/config.h"
#include "quant/rng.h"
#include "quant/status.h"
#include "tests/check.h"

static const char *fixdir(void)
{
    const char *d = getenv("CONFIG_FIXTURES");
    return d && d[0] ? d : "tests/fixtures/config";
}

static int parse_str(llm_config *c, const char *json) { return llm_config_parse(c, json, strlen(json), "test.json"); }

static const char *act_str(llm_act a)
{
    return a == LLM_ACT_GELU ? "gelu" : a == LLM_ACT_GELU_TANH ? "gelu_tanh" : "silu";
}

/* Value of key in a line of expected.tsv ("\tkey=value"); NULL if absent. */
static const char *field(const char *line, const char *key, char *buf, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = strchr(line, '\t'); p; p = strchr(p + 1, '\t')) {
        if (strncmp(p + 1, key, kl) == 0 && p[1 + kl] == '=') {
            const char *v = p + 2 + kl;
            size_t n = strcspn(v, "\t\n");
            if (n >= cap) n = cap - 1;
            memcpy(buf, v, n);
            buf[n] = 0;
            return buf;
        }
    }
    return NULL;
}

/* Compare every field of c with the transformers-derived line. */
static void check_against(const char *what, const llm_config *c, const char *line)
{
    char b[64];
    struct { const char *key; long long v; } ints[] = {
        {"vocab", c->vocab}, {"d", c->d}, {"n_layer", c->n_layer}, {"n_head", c->n_head},
        {"n_kv_head", c->n_kv_head}, {"head_dim", c->head_dim}, {"d_ff", c->d_ff}, {"max_pos", c->max_pos},
        {"rot_dim", c->rot_dim}, {"parallel_residual", c->parallel_residual}, {"tied", c->tied},
        {"qkv_bias", c->qkv_bias}, {"o_bias", c->o_bias}, {"mlp_bias", c->mlp_bias}, {"bos", c->bos_id},
        {"eos", c->eos_id}, {"pad", c->pad_id}, {"nparams", (long long)llm_config_nparams(c)},
    };
    int bad = 0;
    char msg[512] = "";
    size_t mo = 0;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        const char *v = field(line, ints[i].key, b, sizeof b);
        if (!v || atoll(v) != ints[i].v) {
            bad++;
            mo += (size_t)snprintf(msg + mo, sizeof msg - mo > 0 ? sizeof msg - mo : 0, " %s=%lld(want %s)",
                                   ints[i].key, ints[i].v, v ? v : "?");
            if (mo >= sizeof msg) mo = sizeof msg - 1;
        }
    }
    struct { const char *key; double v; } dbl[] = {
        {"norm_eps", c->norm_eps}, {"rope_theta", c->rope_theta},
    };
    for (size_t i = 0; i < 2; i++) {
        const char *v = field(line, dbl[i].key, b, sizeof b);
        if (!v || strtod(v, NULL) != dbl[i].v) bad++;
    }
    const char *arch = field(line, "arch", b, sizeof b);
    if (!arch || strcmp(arch, llm_arch_name(c->arch)) != 0) bad++;
    const char *act = field(line, "act", b, sizeof b);
    if (!act || strcmp(act, act_str(c->act)) != 0) bad++;
    const char *rt = field(line, "rope_type", b, sizeof b);
    int llama3 = rt && strcmp(rt, "llama3") == 0;
    if (!rt || llama3 != (c->rope_type == LLM_ROPE_LLAMA3)) bad++;
    if (llama3) {
        if (strtod(field(line, "rope_factor", b, sizeof b), NULL) != c->rope_factor) bad++;
        if (strtod(field(line, "rope_low", b, sizeof b), NULL) != c->rope_low_freq_factor) bad++;
        if (strtod(field(line, "rope_high", b, sizeof b), NULL) != c->rope_high_freq_factor) bad++;
        if (atoi(field(line, "rope_orig_max_pos", b, sizeof b)) != c->rope_orig_max_pos) bad++;
    }
    CHECK(bad == 0, "%s: all %zu fields equal transformers' (%zu parameters)%s", what,
          sizeof ints / sizeof ints[0] + 7 + (llama3 ? 4 : 0), llm_config_nparams(c), msg);
}

/* The six published checkpoints (known parameter counts). */
static const struct {
    const char *name;
    size_t nparams;
} models[] = {
    {"pythia-70m", 70426624},     {"pythia-160m", 162322944},    {"qwen2-0.5b", 494032768},
    {"llama-3.2-1b", 1235814400}, {"tinyllama-1.1b", 1100048384}, {"smollm2-135m", 134515008},
};

static char *tmpdir;

static void test_fixtures(void)
{
    char path[1024], tsv[1024], line[4096];
    snprintf(tsv, sizeof tsv, "%s/expected.tsv", fixdir());
    FILE *fp = fopen(tsv, "r");
    CHECK(fp != NULL, "open %s (run from the repository root or set CONFIG_FIXTURES)", tsv);
    if (!fp) return;
    int nlines = 0;
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char name[128];
        size_t n = strcspn(line, "\t");
        if (n >= sizeof name) continue;
        memcpy(name, line, n);
        name[n] = 0;
        nlines++;
        for (int v5 = 0; v5 < 2; v5++) {
            llm_config c, back;
            snprintf(path, sizeof path, "%s/%s%s.json", fixdir(), name, v5 ? ".v5" : "");
            int rc = llm_config_load(&c, path);
            CHECK(rc == RS_OK, "%s: parses (%s)", path, rc ? rs_last_error() : "ok");
            if (rc) continue;
            check_against(path, &c, line);
            /* save -> load gives the same struct (torch_dtype becomes float32) */
            snprintf(path, sizeof path, "%s/%s%s.json", tmpdir, name, v5 ? ".v5" : "");
            rc = llm_config_save(&c, path);
            int rc2 = rc ? rc : llm_config_load(&back, path);
            snprintf(c.torch_dtype, sizeof c.torch_dtype, "float32");
            CHECK(rc == RS_OK && rc2 == RS_OK && memcmp(&c, &back, sizeof c) == 0,
                  "%s: save -> load round trip is exact (%s)", path, rc || rc2 ? rs_last_error() : "ok");
            char tmp[1100];
            snprintf(tmp, sizeof tmp, "%s.tmp", path);
            CHECK(access(tmp, F_OK) != 0, "%s: no temporary file left behind", path);
            unlink(path);
        }
        for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
            if (strcmp(models[i].name, name) == 0) {
                llm_config c;
                snprintf(path, sizeof path, "%s/%s.json", fixdir(), name);
                if (llm_config_load(&c, path) == RS_OK)
                    CHECK(llm_config_nparams(&c) == models[i].nparams, "%s: %zu parameters (published %zu)", name,
                          llm_config_nparams(&c), models[i].nparams);
            }
    }
    fclose(fp);
    CHECK(nlines == 6, "expected.tsv lists the 6 models (%d)", nlines);
}

static void test_details(void)
{
    llm_config c;
    char path[1024];
    snprintf(path, sizeof path, "%s/pythia-70m.json", fixdir());
    if (llm_config_load(&c, path) == RS_OK) {
        CHECK(c.arch == LLM_GPT_NEOX && c.act == LLM_ACT_GELU && c.rot_dim == 16 && c.rope_theta == 10000 &&
                  c.norm_eps == 1e-5 && strcmp(c.torch_dtype, "float16") == 0,
              "pythia-70m: gelu, 16 of 64 dims rotated, theta 1e4, eps 1e-5, torch_dtype float16 (%s)",
              c.torch_dtype);
    }
    snprintf(path, sizeof path, "%s/llama-3.2-1b.json", fixdir());
    if (llm_config_load(&c, path) == RS_OK)
        CHECK(c.rope_type == LLM_ROPE_LLAMA3 && c.rope_factor == 32 && c.rope_low_freq_factor == 1 &&
                  c.rope_high_freq_factor == 4 && c.rope_orig_max_pos == 8192 && c.rope_theta == 500000 &&
                  c.tied && c.n_kv_head == 8,
              "llama-3.2-1b: llama3 rope (32, 1, 4, 8192), theta 5e5, tied, 8 kv heads");

    /* Llama-3.1 style eos list, defaults of a minimal Llama config */
    const char *minimal = "{\"model_type\": \"llama\", \"vocab_size\": 100, \"hidden_size\": 64,"
                          " \"intermediate_size\": 128, \"num_hidden_layers\": 2, \"num_attention_heads\": 4}";
    int rc = parse_str(&c, minimal);
    CHECK(rc == RS_OK && c.n_kv_head == 4 && c.head_dim == 16 && c.rot_dim == 16 && c.norm_eps == 1e-6 &&
              c.rope_theta == 10000 && c.max_pos == 2048 && c.act == LLM_ACT_SILU && !c.tied && !c.qkv_bias &&
              !c.o_bias && !c.mlp_bias && c.bos_id == 1 && c.eos_id == 2 && c.pad_id == -1 &&
              c.rope_type == LLM_ROPE_DEFAULT && c.torch_dtype[0] == 0,
          "llama defaults (kv = heads, head_dim 16, eps 1e-6, theta 1e4, 2048 positions, silu, untied, no "
          "biases, bos 1, eos 2) %s", rc ? rs_last_error() : "");
    CHECK(llm_config_nparams(&c) == 100 * 64 * 2 + 2 * (2 * 64 + 4 * 64 * 64 + 3 * 64 * 128) + 64,
          "minimal llama: %zu parameters", llm_config_nparams(&c));
    rc = parse_str(&c, "{\"model_type\": \"gpt_neox\", \"vocab_size\": 100, \"hidden_size\": 64,"
                       " \"intermediate_size\": 256, \"num_hidden_layers\": 2, \"num_attention_heads\": 4}");
    CHECK(rc == RS_OK && c.rot_dim == 4 && c.rope_theta == 10000 && c.norm_eps == 1e-5 && c.parallel_residual &&
              c.qkv_bias && c.o_bias && c.mlp_bias && !c.tied && c.act == LLM_ACT_GELU && c.bos_id == 0 &&
              c.eos_id == 2 && c.n_kv_head == 4,
          "gpt_neox defaults (rotary_pct 0.25 -> 4 of 16 dims, theta 1e4, eps 1e-5, parallel, biases, gelu, "
          "bos 0, eos 2) %s", rc ? rs_last_error() : "");
    size_t C = 64, F = 256, V = 100;
    CHECK(llm_config_nparams(&c) ==
              2 * V * C + 2 * (4 * C + 3 * C * C + 3 * C + C * C + C + 2 * C * F + F + C) + 2 * C,
          "minimal gpt_neox: %zu parameters (LayerNorm biases, all linear biases)", llm_config_nparams(&c));
    rc = parse_str(&c, "{\"model_type\": \"qwen2\", \"vocab_size\": 100, \"hidden_size\": 64,"
                       " \"intermediate_size\": 128, \"num_hidden_layers\": 1, \"num_attention_heads\": 4}");
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "num_key_value_heads"),
          "qwen2 without num_key_value_heads takes Qwen2Config's default 32, which 4 heads cannot share: %s",
          rs_last_error());
    rc = parse_str(&c, "{\"model_type\": \"qwen2\", \"vocab_size\": 100, \"hidden_size\": 64,"
                       " \"intermediate_size\": 128, \"num_hidden_layers\": 1, \"num_attention_heads\": 4,"
                       " \"num_key_value_heads\": 2, \"bos_token_id\": null}");
    CHECK(rc == RS_OK && c.qkv_bias && !c.o_bias && !c.mlp_bias && c.max_pos == 32768 && c.bos_id == -1 &&
              c.eos_id == -1 && c.norm_eps == 1e-6,
          "qwen2 defaults (q/k/v bias only, 32768 positions, no bos/eos, eps 1e-6) %s", rc ? rs_last_error() : "");
    CHECK(llm_config_nparams(&c) == 100 * 64 * 2 + (2 * 64 + 64 * 128 + 128 + 64 * 64 + 3 * 64 * 128) + 64,
          "minimal qwen2: %zu parameters", llm_config_nparams(&c));

    rc = parse_str(&c, "{\"model_type\": \"llama\", \"vocab_size\": 100, \"hidden_size\": 64,"
                       " \"intermediate_size\": 128, \"num_hidden_layers\": 1, \"num_attention_heads\": 4,"
                       " \"num_key_value_heads\": 2, \"head_dim\": 32, \"attention_bias\": true,"
                       " \"mlp_bias\": true, \"tie_word_embeddings\": true,"
                       " \"eos_token_id\": [128001, 128008, 128009], \"pad_token_id\": 5,"
                       " \"hidden_act\": \"gelu_pytorch_tanh\", \"rope_theta\": 500000.0}");
    CHECK(rc == RS_OK && c.head_dim == 32 && c.rot_dim == 32 && c.qkv_bias && c.o_bias && c.mlp_bias && c.tied &&
              c.eos_id == 128001 && c.pad_id == 5 && c.act == LLM_ACT_GELU_TANH && c.rope_theta == 500000,
          "llama: head_dim 32 given (heads wider than hidden/heads), biases, eos list -> first, gelu tanh %s",
          rc ? rs_last_error() : "");
    /* q: 64 -> 4*32, k, v: 64 -> 2*32, o: 128 -> 64, all with biases; gated MLP with biases */
    CHECK(llm_config_nparams(&c) == 100 * 64 + (2 * 64 + 64 * 256 + 256 + 128 * 64 + 64 + 3 * 64 * 128 + 2 * 128 + 64) + 64,
          "llama with head_dim and biases: %zu parameters", llm_config_nparams(&c));

    /* new-style rope_parameters alone, and rope_parameters beating the top-level keys */
    rc = parse_str(&c, "{\"model_type\": \"gpt_neox\", \"vocab_size\": 100, \"hidden_size\": 96,"
                       " \"intermediate_size\": 128, \"num_hidden_layers\": 1, \"num_attention_heads\": 4,"
                       " \"rotary_pct\": 0.25, \"rotary_emb_base\": 5.0,"
                       " \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 20000.5,"
                       " \"partial_rotary_factor\": 0.5}}");
    CHECK(rc == RS_OK && c.rot_dim == 12 && c.rope_theta == 20000.5,
          "gpt_neox: rope_parameters win over rotary_pct / rotary_emb_base (12 of 24 dims, theta 20000.5) %s",
          rc ? rs_last_error() : "");
    rc = parse_str(&c, "{\"model_type\": \"gpt_neox\", \"vocab_size\": 100, \"hidden_size\": 64,"
                       " \"intermediate_size\": 128, \"num_hidden_layers\": 1, \"num_attention_heads\": 4,"
                       " \"rope_theta\": 20000.0, \"partial_rotary_factor\": 0.5}");
    CHECK(rc == RS_OK && c.rope_theta == 10000 && c.rot_dim == 4,
          "gpt_neox ignores top-level rope_theta / partial_rotary_factor, as GPTNeoXConfig does (theta %g, %d dims)",
          c.rope_theta, c.rot_dim);
    rc = parse_str(&c, "{\"model_type\": \"gpt_neox\", \"vocab_size\": 100, \"hidden_size\": 80,"
                       " \"intermediate_size\": 128, \"num_hidden_layers\": 1, \"num_attention_heads\": 4,"
                       " \"rotary_pct\": 0.3}");
    CHECK(rc == RS_OK && c.rot_dim == 6, "gpt_neox: rot_dim = int(20 * 0.3) = 6 (%d) %s", c.rot_dim,
          rc ? rs_last_error() : "");
    rc = parse_str(&c, "{\"model_type\": \"llama\", \"vocab_size\": 100, \"hidden_size\": 64,"
                       " \"intermediate_size\": 128, \"num_hidden_layers\": 1, \"num_attention_heads\": 4,"
                       " \"max_position_embeddings\": 4096, \"rope_parameters\": {\"rope_type\": \"llama3\","
                       " \"rope_theta\": 500000.0, \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                       " \"high_freq_factor\": 4.0}}");
    CHECK(rc == RS_OK && c.rope_type == LLM_ROPE_LLAMA3 && c.rope_factor == 8 && c.rope_orig_max_pos == 4096 &&
              c.rope_theta == 500000,
          "llama3 in rope_parameters; original_max_position_embeddings defaults to max_position_embeddings %s",
          rc ? rs_last_error() : "");
    rc = parse_str(&c, "{\"model_type\": \"llama\", \"vocab_size\": 100, \"hidden_size\": 64,"
                       " \"intermediate_size\": 128, \"num_hidden_layers\": 1, \"num_attention_heads\": 4,"
                       " \"rope_scaling\": {\"type\": \"default\"}, \"rope_theta\": 1234.5}");
    CHECK(rc == RS_OK && c.rope_type == LLM_ROPE_DEFAULT && c.rope_theta == 1234.5,
          "rope_scaling {type: default} with a top-level rope_theta %s", rc ? rs_last_error() : "");

    /* awkward numbers survive save -> load bit for bit */
    c.norm_eps = 1.0 / 3.0 * 1e-5;
    c.rope_theta = 0.1 + 0.2;
    c.pad_id = -1;
    char path2[1024];
    snprintf(path2, sizeof path2, "%s/odd.json", tmpdir);
    llm_config back;
    rc = llm_config_save(&c, path2);
    int rc2 = rc ? rc : llm_config_load(&back, path2);
    snprintf(c.torch_dtype, sizeof c.torch_dtype, "float32");
    CHECK(rc == RS_OK && rc2 == RS_OK && back.norm_eps == c.norm_eps && back.rope_theta == c.rope_theta &&
              memcmp(&c, &back, sizeof c) == 0,
          "eps 1/3e-5 and theta 0.1+0.2 round-trip exactly through config.json %s", rc || rc2 ? rs_last_error() : "");
    unlink(path2);
    /* a neox rot_dim whose fraction is not exact in binary */
    rc = parse_str(&c, "{\"model_type\": \"gpt_neox\", \"vocab_size\": 100, \"hidden_size\": 192,"
                       " \"intermediate_size\": 128, \"num_hidden_layers\": 1, \"num_attention_heads\": 2}");
    int ok = rc == RS_OK;
    for (int rd = 2; ok && rd <= 96; rd += 2) {
        c.rot_dim = rd;
        ok = llm_config_save(&c, path2) == RS_OK && llm_config_load(&back, path2) == RS_OK && back.rot_dim == rd;
        if (!ok) printf("rot_dim %d -> %d: %s\n", rd, back.rot_dim, rs_last_error());
    }
    CHECK(ok, "gpt_neox head_dim 96: every even rot_dim 2..96 survives save -> load (rotary_pct chosen so "
              "int(96 * pct) is exact)");
    unlink(path2);
}

/* An error case: parse fails with `status` and the message names `needle`. */
static void expect_error(const char *what, const char *json, int status, const char *needle)
{
    llm_config c;
    int rc = parse_str(&c, json);
    const char *m = rs_last_error();
    CHECK(rc == status && strstr(m, needle) && strncmp(m, "test.json: ", 11) == 0, "%s -> %s: %s", what,
          rs_strerror(rc), m);
}

#define BASE "\"vocab_size\": 100, \"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2"
#define LLAMA "{\"model_type\": \"llama\", " BASE ", \"num_attention_heads\": 4"
#define NEOX "{\"model_type\": \"gpt_neox\", " BASE ", \"num_attention_heads\": 4"
#define QWEN "{\"model_type\": \"qwen2\", " BASE ", \"num_attention_heads\": 4, \"num_key_value_heads\": 2"

static void test_errors(void)
{
    expect_error("bert", "{\"model_type\": \"bert\", " BASE "}", RS_ENOTSUP, "model_type 'bert' is not supported");
    expect_error("no model_type", "{" BASE "}", RS_EINVAL, "'model_type'");
    expect_error("model_type 3", "{\"model_type\": 3}", RS_EINVAL, "'model_type'");
    expect_error("missing hidden_size",
                 "{\"model_type\": \"llama\", \"vocab_size\": 100, \"intermediate_size\": 128,"
                 " \"num_hidden_layers\": 2, \"num_attention_heads\": 4}",
                 RS_EINVAL, "missing field 'hidden_size'");
    expect_error("missing num_attention_heads", "{\"model_type\": \"gpt_neox\", " BASE "}", RS_EINVAL,
                 "'num_attention_heads'");
    expect_error("hidden_size as a string",
                 "{\"model_type\": \"llama\", \"vocab_size\": 100, \"hidden_size\": \"64\", \"intermediate_size\": 128,"
                 " \"num_hidden_layers\": 2, \"num_attention_heads\": 4}",
                 RS_EINVAL, "'hidden_size' must be an integer, not a string");
    expect_error("negative vocab",
                 "{\"model_type\": \"llama\", \"vocab_size\": -5, \"hidden_size\": 64, \"intermediate_size\": 128,"
                 " \"num_hidden_layers\": 2, \"num_attention_heads\": 4}",
                 RS_EINVAL, "'vocab_size' must be >= 1");
    expect_error("fractional layers",
                 "{\"model_type\": \"llama\", \"vocab_size\": 100, \"hidden_size\": 64, \"intermediate_size\": 128,"
                 " \"num_hidden_layers\": 2.5, \"num_attention_heads\": 4}",
                 RS_EINVAL, "'num_hidden_layers' must be an integer");
    expect_error("huge intermediate_size",
                 "{\"model_type\": \"llama\", \"vocab_size\": 100, \"hidden_size\": 64, \"intermediate_size\": 1e12,"
                 " \"num_hidden_layers\": 2, \"num_attention_heads\": 4}",
                 RS_EINVAL, "'intermediate_size'");
    expect_error("rms_norm_eps string", LLAMA ", \"rms_norm_eps\": \"1e-6\"}", RS_EINVAL, "'rms_norm_eps'");
    expect_error("layer_norm_eps 0", NEOX ", \"layer_norm_eps\": 0}", RS_EINVAL, "'layer_norm_eps' must be positive");
    expect_error("tie_word_embeddings 1", LLAMA ", \"tie_word_embeddings\": 1}", RS_EINVAL, "'tie_word_embeddings'");
    expect_error("rope_scaling linear", LLAMA ", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}",
                 RS_ENOTSUP, "rope_scaling.type 'linear' is not supported");
    expect_error("rope_scaling dynamic", NEOX ", \"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": 2.0}}",
                 RS_ENOTSUP, "rope_scaling.rope_type 'dynamic'");
    expect_error("rope_parameters yarn", QWEN ", \"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4.0}}",
                 RS_ENOTSUP, "rope_parameters.rope_type 'yarn'");
    expect_error("llama3 without factor",
                 LLAMA ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"low_freq_factor\": 1.0,"
                       " \"high_freq_factor\": 4.0}}",
                 RS_EINVAL, "'rope_scaling.factor'");
    expect_error("llama3 high <= low",
                 LLAMA ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 4.0,"
                       " \"high_freq_factor\": 4.0}}",
                 RS_EINVAL, "high_freq_factor");
    expect_error("rope_scaling a string", LLAMA ", \"rope_scaling\": \"llama3\"}", RS_EINVAL, "'rope_scaling'");
    expect_error("rope_theta negative", LLAMA ", \"rope_theta\": -1}", RS_EINVAL, "'rope_theta' must be positive");
    expect_error("rotary_pct 1.5", NEOX ", \"rotary_pct\": 1.5}", RS_EINVAL, "'rotary_pct'");
    expect_error("odd rotary dims", NEOX ", \"rotary_pct\": 0.3125}", RS_EINVAL, "rotary dims");
    expect_error("partial rotary for llama", LLAMA ", \"partial_rotary_factor\": 0.5}", RS_ENOTSUP,
                 "'partial_rotary_factor'");
    expect_error("qwen2 sliding window", QWEN ", \"use_sliding_window\": true, \"sliding_window\": 4096,"
                 " \"max_window_layers\": 0}", RS_ENOTSUP, "'use_sliding_window' is true (layers 0..1");
    expect_error("layer_types too short", QWEN ", \"layer_types\": [\"full_attention\"]}", RS_EINVAL,
                 "'layer_types' has 1 entries for 2 layers");
    {
        llm_config c;
        int rc = parse_str(&c, QWEN ", \"use_sliding_window\": true, \"max_window_layers\": 2}");
        CHECK(rc == RS_OK, "qwen2 use_sliding_window with max_window_layers >= layers: no layer slides (%s)",
              rc ? rs_last_error() : "ok");
        rc = parse_str(&c, QWEN ", \"use_sliding_window\": true, \"sliding_window\": null}");
        CHECK(rc == RS_OK, "qwen2 use_sliding_window with sliding_window null: no layer slides (%s)",
              rc ? rs_last_error() : "ok");
        rc = parse_str(&c, QWEN ", \"use_sliding_window\": true, \"layer_types\": [\"full_attention\", \"full_attention\"]}");
        CHECK(rc == RS_OK, "qwen2 use_sliding_window with layer_types all full: accepted (%s)", rc ? rs_last_error() : "ok");
    }
    expect_error("qwen2 sliding from layer 1", QWEN ", \"use_sliding_window\": true, \"max_window_layers\": 1}",
                 RS_ENOTSUP, "layers 1..1 would use sliding-window");
    expect_error("qwen2 sliding layer", QWEN ", \"layer_types\": [\"full_attention\", \"sliding_attention\"]}",
                 RS_ENOTSUP, "'layer_types[1]'");
    expect_error("relu", LLAMA ", \"hidden_act\": \"relu\"}", RS_ENOTSUP, "hidden_act 'relu'");
    expect_error("hidden_act number", LLAMA ", \"hidden_act\": 1}", RS_EINVAL, "'hidden_act'");
    expect_error("heads not dividing", LLAMA ", \"num_key_value_heads\": 3}", RS_EINVAL, "num_key_value_heads");
    expect_error("hidden % heads", "{\"model_type\": \"gpt_neox\", " BASE ", \"num_attention_heads\": 5}", RS_EINVAL,
                 "num_attention_heads");
    expect_error("neox head_dim", NEOX ", \"head_dim\": 32}", RS_ENOTSUP, "'head_dim'");
    expect_error("eos list of strings", LLAMA ", \"eos_token_id\": [\"</s>\"]}", RS_EINVAL, "'eos_token_id[0]'");
    expect_error("bos -7", LLAMA ", \"bos_token_id\": -7}", RS_EINVAL, "'bos_token_id'");
    expect_error("quantized", LLAMA ", \"quantization_config\": {\"quant_method\": \"gptq\"}}", RS_ENOTSUP,
                 "'quantization_config'");
    expect_error("duplicate key", LLAMA ", \"hidden_size\": 128}", RS_EINVAL, "duplicate key 'hidden_size'");
    expect_error("per-layer rope",
                 LLAMA ", \"rope_parameters\": {\"full_attention\": {\"rope_type\": \"default\"}}}", RS_ENOTSUP,
                 "per-layer");
    expect_error("not JSON", "{\"model_type\": \"llama\",\n  \"vocab_size\": 1OO}", RS_EINVAL, "line 2");
    expect_error("trailing garbage", LLAMA "} x", RS_EINVAL, "unexpected characters after the JSON object at byte 138");
    expect_error("array at the top", "[1, 2]", RS_EINVAL, "not an object");
    expect_error("empty", "", RS_EINVAL, "invalid JSON");

    llm_config c;
    int rc = llm_config_load(&c, "/nonexistent/config.json");
    CHECK(rc == RS_EIO && strstr(rs_last_error(), "/nonexistent/config.json"), "missing file -> %s: %s",
          rs_strerror(rc), rs_last_error());

    /* check() on configs built in code; save refuses them without leaving a file */
    rc = parse_str(&c, QWEN "}");
    if (rc == RS_OK) {
        llm_config bad = c;
        bad.o_bias = 1;
        CHECK(llm_config_check(&bad) == RS_EINVAL && strstr(rs_last_error(), "qwen2"),
              "qwen2 with an o_proj bias cannot be saved as Qwen2: %s", rs_last_error());
        char path[1024];
        snprintf(path, sizeof path, "%s/bad.json", tmpdir);
        rc = llm_config_save(&bad, path);
        CHECK(rc == RS_EINVAL && access(path, F_OK) != 0, "save of an invalid config fails and writes nothing: %s",
              rs_last_error());
        bad = c;
        bad.rot_dim = 8;
        CHECK(llm_config_check(&bad) == RS_EINVAL, "qwen2 with partial rotary: %s", rs_last_error());
        bad = c;
        bad.norm_eps = NAN;
        CHECK(llm_config_check(&bad) == RS_EINVAL && strstr(rs_last_error(), "rms_norm_eps"), "NaN eps: %s",
              rs_last_error());
        snprintf(path, sizeof path, "/nonexistent-dir/config.json");
        rc = llm_config_save(&c, path);
        CHECK(rc == RS_EIO && strstr(rs_last_error(), "/nonexistent-dir/config.json.tmp"),
              "save into a missing folder -> %s: %s", rs_strerror(rc), rs_last_error());
    }
    CHECK(strcmp(llm_arch_name(LLM_GPT_NEOX), "gpt_neox") == 0 && strcmp(llm_arch_name(LLM_LLAMA), "llama") == 0 &&
              strcmp(llm_arch_name(LLM_QWEN2), "qwen2") == 0,
          "llm_arch_name");
}

/* Byte flips over a real config: never a crash; a success passes llm_config_check. */
static void test_fuzz(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/llama-3.2-1b.v5.json", fixdir());
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        CHECK(0, "open %s", path);
        return;
    }
    char orig[4096];
    size_t n = fread(orig, 1, sizeof orig, fp);
    fclose(fp);
    char *buf = malloc(n);
    rs_rng *r = rs_rng_alloc(2024, 78);
    int n_ok = 0, n_err = 0, bad = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, orig, n);
        int flips = 1 + (int)rs_rng_uint(r, 3);
        for (int f = 0; f < flips; f++) {
            size_t pos = rs_rng_uint(r, n);
            unsigned long kind = rs_rng_uint(r, 3);
            if (kind == 0) buf[pos] = (char)(buf[pos] ^ (1 << rs_rng_uint(r, 8)));
            else if (kind == 1) buf[pos] = "0123456789[]{},:\"-.etn"[rs_rng_uint(r, 23)];
            else buf[pos] = (char)('0' + rs_rng_uint(r, 10));
        }
        size_t len = rs_rng_uniform(r) < 0.05 ? rs_rng_uint(r, n + 1) : n;
        llm_config c;
        int rc = llm_config_parse(&c, buf, len, "fuzz.json");
        if (rc == RS_OK) {
            n_ok++;
            if (llm_config_check(&c) != RS_OK || llm_config_nparams(&c) == 0) bad++;
        } else {
            n_err++;
            if ((rc != RS_EINVAL && rc != RS_ENOTSUP) || strncmp(rs_last_error(), "fuzz.json: ", 11) != 0)
                if (bad++ < 5) printf("  iteration %d: status %d, '%s'\n", it, rc, rs_last_error());
        }
    }
    rs_rng_free(r);
    free(buf);
    CHECK(bad == 0 && n_ok > 100 && n_err > 1000,
          "config fuzz: 3000 byte-flipped configs, %d parsed and pass llm_config_check, %d rejected naming the "
          "file; %d inconsistencies", n_ok, n_err, bad);
}

int main(void)
{
    char templ[] = "/tmp/rs_test_config_XXXXXX";
    tmpdir = mkdtemp(templ);
    CHECK(tmpdir != NULL, "mkdtemp");
    if (!tmpdir) return check_summary("test_config");
    test_fixtures();
    test_details();
    test_errors();
    test_fuzz();
    if (rmdir(tmpdir) != 0) CHECK(0, "temp folder %s is empty at the end", tmpdir);
    return check_summary("test_config");
}
