#!/usr/bin/env python3
"""Reference data for tests/test_config.c, from transformers' own config and model classes.

For every hand-written config in tests/fixtures/config/<name>.json (the published
config.json of Pythia-70m/160m, Qwen2-0.5B, Llama-3.2-1B, TinyLlama-1.1B, SmolLM2-135M):

  * load it with AutoConfig, build the model on the meta device (no memory, no weights)
    and read every field llm_config holds from the *instantiated modules* (head size,
    rotary dims, which Linear layers have a bias, ...) plus the parameter count;
    one line per config goes to tests/fixtures/config/expected.tsv;
  * save it again with transformers (save_pretrained) and keep the result as
    tests/fixtures/config/<name>.v5.json: the new "rope_parameters" spelling.

With --check-save, it also compiles a tiny C program against build/librostesim.a
(run `make` first) that loads each fixture with llm_config_load and writes it back with
llm_config_save, then loads those files with transformers and checks that they describe
the same model (same derived fields, same parameter count).

Usage (from the repository root):
    /tmp/venv/bin/python tools/config_fixture.py               # regenerate the fixtures
    /tmp/venv/bin/python tools/config_fixture.py --check-save  # verify llm_config_save
"""
import json
import os
import subprocess
import sys
import tempfile

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

FIX = os.path.join("tests", "fixtures", "config")
NAMES = ["pythia-70m", "pythia-160m", "qwen2-0.5b", "llama-3.2-1b", "tinyllama-1.1b", "smollm2-135m"]
ACT = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh",
       "silu": "silu"}


def load_dir(d):
    cfg = AutoConfig.from_pretrained(d)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    return cfg, model


def derive(cfg, model):
    """The llm_config fields, read from the built model where possible."""
    rp = cfg.rope_parameters
    out = {"arch": cfg.model_type, "vocab": cfg.vocab_size, "d": cfg.hidden_size,
           "n_layer": cfg.num_hidden_layers, "n_head": cfg.num_attention_heads, "d_ff": cfg.intermediate_size,
           "max_pos": cfg.max_position_embeddings, "act": ACT[cfg.hidden_act],
           "rope_theta": repr(float(rp["rope_theta"])), "rope_type": rp["rope_type"],
           "tied": int(model.get_output_embeddings().weight is model.get_input_embeddings().weight)}
    if cfg.model_type == "gpt_neox":
        layer = model.gpt_neox.layers[0]
        att = layer.attention
        out.update(n_kv_head=cfg.num_attention_heads, head_dim=att.head_size, rot_dim=att.rotary_ndims,
                   norm_eps=repr(cfg.layer_norm_eps), parallel_residual=int(layer.use_parallel_residual),
                   qkv_bias=int(att.query_key_value.bias is not None), o_bias=int(att.dense.bias is not None),
                   mlp_bias=int(layer.mlp.dense_h_to_4h.bias is not None))
    else:
        layer = model.model.layers[0]
        att = layer.self_attn
        out.update(n_kv_head=cfg.num_key_value_heads, head_dim=att.head_dim,
                   rot_dim=2 * model.model.rotary_emb.inv_freq.shape[0], norm_eps=repr(cfg.rms_norm_eps),
                   parallel_residual=0, qkv_bias=int(att.q_proj.bias is not None),
                   o_bias=int(att.o_proj.bias is not None), mlp_bias=int(layer.mlp.up_proj.bias is not None))
    if rp["rope_type"] == "llama3":
        out.update(rope_factor=repr(float(rp["factor"])), rope_low=repr(float(rp["low_freq_factor"])),
                   rope_high=repr(float(rp["high_freq_factor"])),
                   rope_orig_max_pos=rp["original_max_position_embeddings"])

    def tid(v):
        if isinstance(v, list):
            v = v[0] if v else None
        return -1 if v is None else v
    out.update(bos=tid(cfg.bos_token_id), eos=tid(cfg.eos_token_id), pad=tid(cfg.pad_token_id),
               nparams=sum(p.numel() for p in model.parameters()))
    return out


def with_config(text):
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(text)
    return d


def generate():
    rows = []
    for name in NAMES:
        src = os.path.join(FIX, name + ".json")
        cfg, model = load_dir(with_config(open(src).read()))
        fields = derive(cfg, model)
        rows.append(name + "\t" + "\t".join(f"{k}={v}" for k, v in fields.items()))
        out = tempfile.mkdtemp()
        cfg.save_pretrained(out)
        with open(os.path.join(out, "config.json")) as f:
            v5 = f.read()
        with open(os.path.join(FIX, name + ".v5.json"), "w") as f:
            f.write(v5)
        # the re-saved config must describe the same model
        cfg2, model2 = load_dir(out)
        assert derive(cfg2, model2) == fields, name
        print(f"{name}: {fields['nparams']:,} parameters")
    with open(os.path.join(FIX, "expected.tsv"), "w") as f:
        f.write(f"# written by tools/config_fixture.py with transformers {transformers.__version__}\n")
        f.write("\n".join(rows) + "\n")


# Less common settings, checked by --check-save only (not committed as fixtures).
EXTRA = {
    "neox-variant": {"model_type": "gpt_neox", "vocab_size": 1000, "hidden_size": 192, "intermediate_size": 300,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "rotary_pct": 0.3125,
                     "rotary_emb_base": 12345.5, "use_parallel_residual": False, "attention_bias": False,
                     "tie_word_embeddings": True, "hidden_act": "gelu_new", "layer_norm_eps": 1e-6,
                     "bos_token_id": 7, "eos_token_id": [8, 9], "pad_token_id": 1},
    "llama-variant": {"model_type": "llama", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 100,
                      "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 32,
                      "attention_bias": True, "mlp_bias": True, "hidden_act": "gelu_pytorch_tanh",
                      "rms_norm_eps": 3.3e-6, "max_position_embeddings": 4096,
                      "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                          "low_freq_factor": 1.5, "high_freq_factor": 4.25}},
    "qwen2-variant": {"model_type": "qwen2", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 100,
                      "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
                      "rope_theta": 1000000.0, "tie_word_embeddings": False},
}


C_PROG = r"""
#include <stdio.h>
#include "llm/io/config.h"
#include "quant/status.h"
int main(int argc, char **argv)
{
    llm_config c;
    if (llm_config_load(&c, argv[1]) || llm_config_save(&c, argv[2])) {
        fprintf(stderr, "%s\n", rs_last_error());
        return 1;
    }
    printf("%zu\n", llm_config_nparams(&c));
    return 0;
}
"""


def check_save():
    tmp = tempfile.mkdtemp()
    prog = os.path.join(tmp, "save")
    with open(prog + ".c", "w") as f:
        f.write(C_PROG)
    subprocess.run(["gcc", "-std=c11", "-D_GNU_SOURCE", "-I.", "-I/usr/include/cjson", "-fopenmp", prog + ".c",
                    "build/librostesim.a", "-o", prog, "-lopenblas", "-llapacke", "-lgsl", "-lcjson", "-lpcre2-8",
                    "-lutf8proc", "-lm"], check=True)
    bad = 0
    for name, cfg in EXTRA.items():
        with open(os.path.join(tmp, name + ".json"), "w") as f:
            json.dump(cfg, f)
    srcs = [os.path.join(FIX, n + s) for n in NAMES for s in (".json", ".v5.json")]
    srcs += [os.path.join(tmp, n + ".json") for n in EXTRA]
    for src in srcs:
        if True:
            variant = os.path.basename(src)
            d = os.path.join(tmp, "saved-" + variant)
            os.makedirs(d)
            r = subprocess.run([prog, src, os.path.join(d, "config.json")], capture_output=True, text=True)
            if r.returncode:
                print(f"FAIL {variant}: {r.stderr.strip()}")
                bad += 1
                continue
            want = derive(*load_dir(with_config(open(src).read())))
            got = derive(*load_dir(d))
            ok = got == want and int(r.stdout) == want["nparams"]
            bad += not ok
            print(f"{'PASS' if ok else 'FAIL'} {variant}: llm_config_save -> transformers "
                  f"{transformers.__version__} gives the same model ({got['nparams']:,} parameters, "
                  f"C counts {int(r.stdout):,})")
            if not ok:
                for k in want:
                    if want[k] != got.get(k):
                        print(f"   {k}: want {want[k]} got {got.get(k)}")
    print(f"config save check: {bad} failures")
    return 1 if bad else 0


if __name__ == "__main__":
    if "--check-save" in sys.argv:
        sys.exit(check_save())
    generate()
