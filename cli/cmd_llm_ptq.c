/* rostesim llm ptq: post-training quantization baselines (RTN, GPTQ, QuaRot, SpinQuant) of a
 * full-precision checkpoint, written as a folder that `llm eval` / `llm generate` load like
 * a QAT model. Thin: parse, call llm/quantize/ptq.h, print. Exit codes: 0 success, 1 runtime
 * failure, 2 usage error. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "llm/train/data.h"
#include "llm/nn/model.h"
#include "llm/quantize/ptq.h"
#include "llm/quantize/qat.h"
#include "llm/quantize/rotate.h"
#include "llm/text/tokenizer.h"
#include "quant/status.h"

static int lib_fail(const char *cmd) { return cli_error(cmd, "%s", rs_last_error()), 1; }

static const char PTQ_DESC[] =
    "Post-training quantization of a full-precision model (ROSTE.md §6 baselines):\n"
    "  rtn     the quantizers of ROSTE.md §2 as they are: weights per output channel, activations\n"
    "          per token, K/V per token per head (the weights stay full precision in the folder\n"
    "          and are fake-quantized at load, as for a QAT model);\n"
    "  gptq    GPTQ weights (error feedback through the Cholesky factor of the damped Hessian\n"
    "          H = X^T X of each linear site's inputs on the first --calib rows of --data),\n"
    "          sequential by layer; the weights are stored on GPTQ's grid and the folder's weight\n"
    "          quantizer is off (wbits 16 in rostesim_qat.json, the real bits under \"ptq\");\n"
    "          activations and K/V stay RTN;\n"
    "  quarot  every rotation on (R1-R4, Hadamards with random signs, seed --rot-seed), then RTN\n"
    "          or GPTQ weights (--quarot-weights); --aclip 0.9 and --kvclip 0.95 by default;\n"
    "  spinquant R1 and R2 (one per layer) learned by Cayley SGD on the orthogonal group through\n"
    "          the fake-quantized model with STE, the next-token loss on --spin-rows rows of --data\n"
    "          per step (cycling over the first --calib), --spin-steps steps from lr --spin-lr with\n"
    "          a cosine decay (the step capped at 1/||W||_1 as SpinQuant's optimizer); R3/R4 fixed\n"
    "          random Hadamards; then RTN or GPTQ weights (--spinquant-weights; with GPTQ the\n"
    "          rotations are learned with 16-bit weights). Starts from QuaRot's rotations (seed\n"
    "          --rot-seed), same clips; GPT-NeoX learns R2 only (R1 stays the Hadamard).\n"
    "The output folder holds the checkpoint, the tokenizer files and rostesim_qat.json; for\n"
    "GPTQ also gptq_errors.tsv (per layer and site: RTN and GPTQ layer-output error\n"
    "||X W^T - X Q^T||^2 on the calibration inputs, and their ratio).";

int cmd_llm_ptq(int argc, char **argv)
{
    const char *C = "llm ptq";
    const char *method_s = NULL, *model = NULL, *out = NULL, *data = NULL, *scheme = "asym", *clipmode = "code";
    const char *qw = "rtn", *sw = "rtn";
    int spin_steps = 100, spin_rows = 4;
    double spin_lr = 1.5, spin_mom = 0, prog = 30;
    int max_len = 0, threads = 0, calib = 128, act_order = 0, group = 0;
    int wbits = 4, abits = 4, kvbits = 4;
    double wclip = 1, aclip = 1, kvclip = 1, damp = 0.01;
    long rot_seed = 0;
    cli_opt opts[] = {
        {"--method", OPT_STRING, &method_s, 0, -1, "M", "rtn, gptq, quarot or spinquant (required)", 0},
        {"--model", OPT_STRING, &model, 0, -1, "DIR", "full-precision Hugging Face checkpoint folder (required)", 0},
        {"--out", OPT_STRING, &out, 0, -1, "DIR", "output folder (required)", 0},
        {"--data", OPT_STRING, &data, 0, -1, "FILE", "calibration data, .jsonl or .txt as for llm sft (GPTQ, SpinQuant)", 0},
        {"--calib", OPT_INT, &calib, 1, 1000000, "N", "calibration rows (the data's first N)", 0},
        {"--max-len", OPT_INT, &max_len, 0, 1 << 20, "T", "tokens per calibration row (0: min(512, model))", 0},
        {"--wbits", OPT_INT, &wbits, 1, 16, "B", "weight bits, per output channel (16: off)", 0},
        {"--abits", OPT_INT, &abits, 1, 16, "B", "activation bits, per token at every linear input (16: off)", 0},
        {"--kvbits", OPT_INT, &kvbits, 1, 16, "B", "K/V cache bits, per token per head (16: off)", 0},
        {"--wclip", OPT_DOUBLE, &wclip, 1e-6, 1, "C", "weight clipping factor", 0},
        {"--aclip", OPT_DOUBLE, &aclip, 1e-6, 1, "C", "activation clipping factor (quarot: 0.9)", 0},
        {"--kvclip", OPT_DOUBLE, &kvclip, 1e-6, 1, "C", "K/V clipping factor (quarot: 0.95)", 0},
        {"--scheme", OPT_STRING, &scheme, 0, -1, "S", "asym or sym (all quantizers)", 0},
        {"--clip-mode", OPT_STRING, &clipmode, 0, -1, "M", "code (c scales max and min, authors' code) or paper", 0},
        {"--gptq-damp", OPT_DOUBLE, &damp, 0, 1e6, "D", "GPTQ damping: fraction of mean(diag H)", 0},
        {"--act-order", OPT_FLAG, &act_order, 0, -1, NULL, "GPTQ: columns in decreasing diag(H)", 0},
        {"--group", OPT_INT, &group, 0, 1 << 20, "G", "GPTQ weight groups of G inputs (0: per output channel)", 0},
        {"--quarot-weights", OPT_STRING, &qw, 0, -1, "W", "quarot: rtn or gptq weights", 0},
        {"--spinquant-weights", OPT_STRING, &sw, 0, -1, "W", "spinquant: rtn or gptq weights", 0},
        {"--spin-steps", OPT_INT, &spin_steps, 0, 1000000, "N", "spinquant: Cayley SGD steps (100)", 0},
        {"--spin-lr", OPT_DOUBLE, &spin_lr, 0, 1e6, "LR", "spinquant: initial learning rate, cosine decay (1.5)", 0},
        {"--spin-momentum", OPT_DOUBLE, &spin_mom, 0, 0.999999, "B", "spinquant: Cayley SGD momentum (0)", 0},
        {"--spin-rows", OPT_INT, &spin_rows, 1, 1000000, "N", "spinquant: calibration rows per step (4)", 0},
        {"--progress", OPT_DOUBLE, &prog, 0, 86400, "S", "spinquant: a progress line (step, loss, ETA) on stderr every S seconds (0: none)", 0},
        {"--rot-seed", OPT_LONG, &rot_seed, 0, 2147483647L, "S", "quarot, spinquant: seed of the Hadamards' random signs", 0},
        {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: OpenMP default)", 0},
    };
    cli_cmd cmd = {C, "--method rtn|gptq|quarot|spinquant --model DIR --out DIR [--data FILE] [options]", PTQ_DESC, opts,
                   sizeof opts / sizeof opts[0], 0, 0,
                   "examples:\n  rostesim llm ptq --method rtn --model sft --out sft-rtn\n"
                   "  rostesim llm ptq --method gptq --model sft --data train.jsonl --calib 128 --out sft-gptq\n"
                   "  rostesim llm ptq --method quarot --quarot-weights gptq --model sft --data train.jsonl --out sft-quarot\n"
                   "  rostesim llm ptq --method spinquant --model sft --data train.jsonl --spin-steps 100 --out sft-spin\n"
                   "  rostesim llm eval --model sft-gptq --data test.jsonl"};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    if (!method_s || !model || !out) return cli_error(C, "--method, --model DIR and --out DIR are required (see --help)"), 2;
    int meth = llm_ptq_method_parse(method_s);
    if (meth < 0) return cli_error(C, "--method: '%s' is not rtn, gptq, quarot or spinquant", method_s), 2;
    llm_ptq_opts o;
    llm_ptq_opts_default(&o, (llm_ptq_method)meth);
    o.q.wbits = wbits, o.q.abits = abits, o.q.kvbits = kvbits, o.q.wclip = wclip;
    int rotm = meth == LLM_PTQ_QUAROT || meth == LLM_PTQ_SPINQUANT;
    if (cli_find(&cmd, "--aclip")->seen || !rotm) o.q.aclip = aclip;
    if (cli_find(&cmd, "--kvclip")->seen || !rotm) o.q.kvclip = kvclip;
    if (!strcmp(scheme, "sym")) o.q.scheme = QZ_SYM;
    else if (strcmp(scheme, "asym")) return cli_error(C, "--scheme: '%s' is not asym or sym", scheme), 2;
    if (!strcmp(clipmode, "paper")) o.q.clipmode = QZ_CLIP_PAPER;
    else if (strcmp(clipmode, "code")) return cli_error(C, "--clip-mode: '%s' is not code or paper", clipmode), 2;
    if (strcmp(qw, "rtn") && strcmp(qw, "gptq")) return cli_error(C, "--quarot-weights: '%s' is not rtn or gptq", qw), 2;
    if (cli_find(&cmd, "--quarot-weights")->seen && meth != LLM_PTQ_QUAROT)
        return cli_error(C, "--quarot-weights applies to --method quarot only"), 2;
    if (strcmp(sw, "rtn") && strcmp(sw, "gptq")) return cli_error(C, "--spinquant-weights: '%s' is not rtn or gptq", sw), 2;
    if (meth != LLM_PTQ_SPINQUANT) {
        const char *so[] = {"--spinquant-weights", "--spin-steps", "--spin-lr", "--spin-momentum", "--spin-rows", "--progress"};
        for (int i = 0; i < 6; i++)
            if (cli_find(&cmd, so[i])->seen) return cli_error(C, "%s applies to --method spinquant only", so[i]), 2;
    }
    o.gptq_weights = meth == LLM_PTQ_GPTQ || (meth == LLM_PTQ_QUAROT && !strcmp(qw, "gptq")) ||
                     (meth == LLM_PTQ_SPINQUANT && !strcmp(sw, "gptq"));
    o.spin.steps = spin_steps, o.spin.lr = spin_lr, o.spin.momentum = spin_mom, o.spin.rows = spin_rows;
    o.spin.progress = prog;
    llm_spin_report srep = {0};
    if (meth == LLM_PTQ_SPINQUANT) o.spin_report = &srep;
    o.damp = damp, o.act_order = act_order, o.group = group, o.calib = calib;
    o.rot_seed = (uint64_t)rot_seed;
    int g = llm_ptq_uses_gptq(&o);
    if (!g && (act_order || group || cli_find(&cmd, "--gptq-damp")->seen))
        return cli_error(C, "--gptq-damp, --act-order and --group need GPTQ weights (--method gptq, or quarot "
                            "or spinquant with --quarot-weights / --spinquant-weights gptq)"), 2;
    int need_data = g || meth == LLM_PTQ_SPINQUANT;
    if (need_data && !data)
        return cli_error(C, "--data FILE is required for GPTQ weights and SpinQuant (the calibration rows)"), 2;
    if (llm_ptq_opts_check(&o)) return cli_error(C, "%s", rs_last_error()), 2;
    if (threads > 0) omp_set_num_threads(threads);

    llm_model *m = NULL;
    tok_tokenizer *tok = NULL;
    llm_dataset *ds = NULL;
    llm_rot_config rc = {0};
    llm_ptq_layer_err *err = NULL;
    int rc_ = 0;
    if (llm_qat_load_model(&m, model)) { rc_ = lib_fail(C); goto done; }
    if (m->qat) {
        rc_ = (cli_error(C, "--model: '%s' is already quantized (has %s): give the full-precision model", model,
                         LLM_QAT_FILE), 2);
        goto done;
    }
    if (need_data) {
        char p[4200];
        snprintf(p, sizeof p, "%s/tokenizer.json", model);
        int eos = -1, pad = -1;
        if (tok_load(&tok, p) || llm_special_ids(&m->cfg, model, tok, &eos, &pad)) { rc_ = lib_fail(C); goto done; }
        if (max_len == 0) max_len = m->cfg.max_pos < 512 ? m->cfg.max_pos : 512;
        if (max_len > m->cfg.max_pos) {
            rc_ = (cli_error(C, "--max-len: %d exceeds the model's %d positions", max_len, m->cfg.max_pos), 2);
            goto done;
        }
        llm_data_opts dopt = {max_len, 0, eos};
        if (llm_data_load(&ds, data, tok, &dopt) || llm_data_check_vocab(ds, m->cfg.vocab, pad, "tokenizer", model)) {
            rc_ = lib_fail(C);
            goto done;
        }
        if (ds->n == 0) { rc_ = (cli_error(C, "--data: '%s' has no rows", data), 2); goto done; }
    }
    if (g) {
        err = calloc((size_t)m->cfg.n_layer, sizeof *err);
        if (!err) { rc_ = (cli_error(C, "out of memory"), 1); goto done; }
    }
    cli_blas_note(C); /* after every check of the input */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (llm_ptq_apply(&m, &o, ds, &rc, err)) { rc_ = lib_fail(C); goto done; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (llm_ptq_save(m, &rc, &o, out) || llm_copy_tokenizer_files(model, out)) { rc_ = lib_fail(C); goto done; }
    if (err && o.q.wbits < 16) {
        char p[4200];
        snprintf(p, sizeof p, "%s/gptq_errors.tsv", out);
        double mean[LLM_NSITES];
        if (llm_ptq_write_errors(p, err, m->cfg.n_layer, mean)) { rc_ = lib_fail(C); goto done; }
        fprintf(stderr, "rostesim %s: GPTQ/RTN layer-output error, mean over layers:", C);
        for (int s = 0; s < LLM_NSITES; s++) fprintf(stderr, " %s %.3f", llm_site_name(s), mean[s]);
        fprintf(stderr, " (%d calibration rows; per layer in %s)\n", o.calib < (int)ds->n ? o.calib : (int)ds->n, p);
    }
    if (meth == LLM_PTQ_SPINQUANT)
        fprintf(stderr, "rostesim %s: SpinQuant: %s learned, %d Cayley steps; calibration loss (first %d rows, "
                "quantized%s) %.6f with the random Hadamards -> %.6f; max |R^T R - I| %.3g\n", C,
                srep.learn_r1 ? "R1 and R2" : "R2 (GPT-NeoX: R1 stays the Hadamard)", srep.steps,
                (int)((size_t)o.spin.eval_rows < ds->n && o.spin.eval_rows <= o.calib ? (size_t)o.spin.eval_rows : (size_t)o.calib < ds->n ? (size_t)o.calib : ds->n), g ? ", weights 16-bit" : "", srep.loss0,
                srep.loss1, srep.orth_f64);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("ptq: %s%s W%dA%dKV%d (aclip %g, kvclip %g) in %.2fs: wrote %s\n", llm_ptq_method_name(o.method),
           rotm ? (g ? "+gptq" : "+rtn") : "", o.q.wbits, o.q.abits, o.q.kvbits, o.q.aclip,
           o.q.kvclip, secs, out);
done:
    free(err);
    llm_rot_config_free(&rc);
    llm_data_free(ds);
    llm_model_free(m);
    tok_free(tok);
    return rc_;
}
