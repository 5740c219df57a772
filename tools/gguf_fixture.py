#!/usr/bin/env python3
"""Reference fixtures for the GGUF reader and importer (llm/gguf*.c), written with the `gguf`
package from PyPI (llama.cpp's own Python writer/reader) and HF transformers/tokenizers.

Writes tests/fixtures/gguf/:
  quants.gguf        one tensor per ggml type the importer dequantizes (F32, F16, BF16, Q4_0,
                     Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K), named by the type, shape (2, 512)
                     (GGUF dims [512, 2]), plus "<TYPE>.ref": the package's dequantization
                     (gguf.quants.dequantize) as F32. Legacy types quantize random normal data
                     with the package; the K-quants (which the package only dequantizes) are
                     random bytes with finite f16 scales.
  llama_tiny.gguf    a tiny Llama (2 layers, hidden 32, 4 heads / 2 KV heads, tied embeddings)
                     in F32, converted from its HF twin the way llama.cpp's convert_hf_to_gguf.py
                     does (tensor names, metadata keys, q/k rows permuted for interleaved RoPE),
                     with a SmolLM-style tokenizer (tokenizer.ggml.pre "smollm": digits split one
                     by one, then byte-level GPT-2 pre-tokenization), token types and merges.
  llama_tiny_hf/     the HF twin: config.json, model.safetensors, tokenizer.json, and
                     ref.safetensors ("tokens" (B,T) I32 and transformers' "logits" (B,T,V)).
  tok_smollm.jsonl   golden encodings of test strings by the twin's tokenizer (HF tokenizers):
                     {"text": hex, "ids": [...]} (no special tokens added).
  tok_llama3.gguf, tok_qwen2.gguf   tokenizer-only GGUF files (no tensors) converted from
                     tests/fixtures/tok/{llama3,qwen2}/tokenizer.json with pre "llama-bpe" and
                     "qwen2"; tests compare with tests/fixtures/tok/*/golden.jsonl.

Usage (from the repository root): /tmp/venv/bin/python tools/gguf_fixture.py
Deterministic (fixed seeds). Needs: pip install gguf (0.19), torch, transformers, tokenizers.
"""
import json
import os

import numpy as np
import torch
import gguf
from gguf import GGMLQuantizationType as QT
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM

OUT = os.path.join("tests", "fixtures", "gguf")
ROPE_THETA = 10000.0

# ------------------------------------------------------------------ quantized tensors

KQUANT_SCALES = {  # byte offsets of the f16 scale fields inside one block
    QT.Q4_K: [0, 2], QT.Q5_K: [0, 2], QT.Q6_K: [208],
}


def quant_fixture(rng):
    w = gguf.GGUFWriter(os.path.join(OUT, "quants.gguf"), arch="test")
    rows, cols = 2, 512
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    x[0, :8] = [0, -0.0, 1e-8, -3.5, 7.25, 1e4, -1e4, 0.5]
    for qt in [QT.F32, QT.F16, QT.BF16, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0, QT.Q4_K, QT.Q5_K, QT.Q6_K]:
        if qt in KQUANT_SCALES:
            bsz, tsz = gguf.GGML_QUANT_SIZES[qt]
            nb = rows * cols // bsz
            raw = rng.integers(0, 256, size=(nb, tsz), dtype=np.uint8)
            for off in KQUANT_SCALES[qt]:
                d = (rng.uniform(0.001, 0.05, size=nb) * rng.choice([-1, 1], size=nb)).astype(np.float16)
                raw[:, off:off + 2] = d.view(np.uint8).reshape(nb, 2)
            raw = raw.reshape(rows, -1)
        elif qt == QT.F32:
            raw = x.copy()
        elif qt == QT.F16:
            raw = x.astype(np.float16)
        else:
            raw = gguf.quants.quantize(x, qt)
        ref = gguf.quants.dequantize(raw, qt).astype(np.float32)
        assert ref.shape == (rows, cols), (qt, ref.shape)
        if qt in (QT.F32, QT.F16):
            w.add_tensor(qt.name, raw)
        else:
            w.add_tensor(qt.name, raw, raw_shape=raw.shape, raw_dtype=qt)
        w.add_tensor(qt.name + ".ref", ref)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ------------------------------------------------------------------ tokenizers -> GGUF metadata

def gguf_vocab(tok_json):
    """tokens (by id), token types and merges from an HF tokenizer.json dict, the way
    convert_hf_to_gguf.py's get_vocab_base does it (added special tokens are CONTROL,
    other added tokens USER_DEFINED, the rest NORMAL)."""
    vocab = dict(tok_json["model"]["vocab"])
    added = {a["content"]: a for a in tok_json["added_tokens"]}
    for a in tok_json["added_tokens"]:
        vocab[a["content"]] = a["id"]
    n = max(vocab.values()) + 1
    tokens = [f"[PAD{i}]" for i in range(n)]
    types = [gguf.TokenType.UNUSED] * n
    for s, i in vocab.items():
        tokens[i] = s
        if s in added:
            types[i] = gguf.TokenType.CONTROL if added[s]["special"] else gguf.TokenType.USER_DEFINED
        else:
            types[i] = gguf.TokenType.NORMAL
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok_json["model"]["merges"]]
    return tokens, types, merges


def add_tokenizer(w, tok_json, pre, bos, eos, pad, add_bos):
    tokens, types, merges = gguf_vocab(tok_json)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    if bos is not None: w.add_bos_token_id(bos)
    if eos is not None: w.add_eos_token_id(eos)
    if pad is not None: w.add_pad_token_id(pad)
    w.add_add_bos_token(add_bos)
    return len(tokens)


def tokenizer_only(name, src, pre, add_bos):
    with open(src, encoding="utf-8") as f:
        j = json.load(f)
    w = gguf.GGUFWriter(os.path.join(OUT, name), arch="llama")
    add_tokenizer(w, j, pre, 0, 1, None, add_bos)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "In 2024 there were 365 days and 12 months.",
    "Hello world! Hello there, how are you today?", "def add(a, b):\n    return a + b\n",
    "User: what is 7 times 8?\nAssistant: 7 times 8 is 56.", "Small models can be fine-tuned on a CPU.",
    "Quantization maps weights to a few bits; rotations spread the outliers.",
] * 20

TEST_STRINGS = [
    "", " ", "Hello world! 123", "The year 2025 has 365 days.", "  multiple   spaces\n\nnew lines",
    "<|im_start|>user\nWhat is 7*8?<|im_end|>\n<|im_start|>assistant\n", "café déjà vu ½ ² 3.14",
    "don't stop", "x=1;y=22;z=333", "Quantization maps weights\tto bits.",
]


def smollm_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=330, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    return tok


# ------------------------------------------------------------------ the tiny Llama

def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py's LlamaModel.permute: rotate-half rows -> interleaved rows."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def llama_fixture():
    hf_dir = os.path.join(OUT, "llama_tiny_hf")
    os.makedirs(hf_dir, exist_ok=True)
    tok = smollm_tokenizer()
    tok.save(os.path.join(hf_dir, "tokenizer.json"))
    with open(os.path.join(hf_dir, "tokenizer.json"), encoding="utf-8") as f:
        tok_json = json.load(f)
    with open(os.path.join(OUT, "tok_smollm.jsonl"), "w", encoding="utf-8") as f:
        for s in TEST_STRINGS:
            ids = tok.encode(s, add_special_tokens=False).ids
            f.write(json.dumps({"text": s.encode("utf-8").hex(), "ids": ids}) + "\n")
    V = tok.get_vocab_size()
    cfg = LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      rms_norm_eps=1e-5, rope_theta=ROPE_THETA, tie_word_embeddings=True,
                      bos_token_id=1, eos_token_id=2, pad_token_id=None)
    torch.manual_seed(8)
    model = LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 0.15)
            else:
                p.copy_(1 + 0.2 * torch.randn_like(p))
    model.save_pretrained(hf_dir, safe_serialization=True)
    gen = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, V, (2, 12), generator=gen, dtype=torch.int32)
    with torch.no_grad():
        logits = model(tokens.long()).logits.float()
    save_file({"tokens": tokens.contiguous(), "logits": logits.contiguous()}, os.path.join(hf_dir, "ref.safetensors"))

    w = gguf.GGUFWriter(os.path.join(OUT, "llama_tiny.gguf"), arch="llama")
    w.add_name("llama tiny (rostesim fixture)")
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(ROPE_THETA)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_vocab_size(V)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    add_tokenizer(w, tok_json, "smollm", 1, 2, 2, False)
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", sd[p + "input_layernorm.weight"])
        w.add_tensor(b + "attn_q.weight", np.ascontiguousarray(permute(sd[p + "self_attn.q_proj.weight"], nh, nh)))
        w.add_tensor(b + "attn_k.weight", np.ascontiguousarray(permute(sd[p + "self_attn.k_proj.weight"], nh, nkv)))
        w.add_tensor(b + "attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        w.add_tensor(b + "attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        w.add_tensor(b + "ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        w.add_tensor(b + "ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        w.add_tensor(b + "ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        w.add_tensor(b + "ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(8)
    quant_fixture(rng)
    llama_fixture()
    tokenizer_only("tok_llama3.gguf", os.path.join("tests", "fixtures", "tok", "llama3", "tokenizer.json"),
                   "llama-bpe", True)
    tokenizer_only("tok_qwen2.gguf", os.path.join("tests", "fixtures", "tok", "qwen2", "tokenizer.json"),
                   "qwen2", False)
    for f in sorted(os.listdir(OUT)):
        p = os.path.join(OUT, f)
        if os.path.isfile(p):
            print(f"{p}: {os.path.getsize(p)} bytes")


if __name__ == "__main__":
    main()
