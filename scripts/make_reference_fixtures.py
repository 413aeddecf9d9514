"""The reference fixtures the tests check the engine against, committed under
Tests/Fixtures/reference (the tests read nothing outside the repository).

Run where torch and transformers are installed (they are not needed for the tests):
    python scripts/make_reference_fixtures.py Tests/Fixtures/reference [NAME ...]
With names, only those fixtures are (re)written.

mixtral-tiny, olmoe-tiny and qwen2moe-tiny have the shapes and configs of the fixtures in
../shared/fixtures/hf-moe (which stay an independent cross-check to run by hand); the
other three cover what those do not.

Each folder gets config.json, the checkpoint as the case asks (per-expert or fused
names, float32 or bfloat16, one file or shards with model.safetensors.index.json), and
expected.safetensors in the layout of ../shared/fixtures (input_ids, logits, loss,
router_counts.L, grad.NAME for every checkpoint tensor). Weights are drawn wide
(std 0.15) so routing is far from uniform; bf16 cases round the weights to bf16 first
and compute the reference in float32 from those values.
"""
import json, os, sys
import torch, transformers
from safetensors.torch import save_file

torch.set_num_threads(2)
OUT = sys.argv[1]
ONLY = set(sys.argv[2:])


def per_expert_names(sd, prefix_map):
    """Fused in-memory expert tensors -> per-expert checkpoint names."""
    out = {}
    for k, v in sd.items():
        if k.endswith("mlp.experts.gate_up_proj"):
            base = k[: -len("mlp.experts.gate_up_proj")]
            moe, g, u, _ = prefix_map
            I = v.shape[1] // 2
            for e in range(v.shape[0]):
                out[f"{base}{moe}.experts.{e}.{g}.weight"] = v[e, :I].contiguous()
                out[f"{base}{moe}.experts.{e}.{u}.weight"] = v[e, I:].contiguous()
        elif k.endswith("mlp.experts.down_proj"):
            base = k[: -len("mlp.experts.down_proj")]
            moe, _, _, d = prefix_map
            for e in range(v.shape[0]):
                out[f"{base}{moe}.experts.{e}.{d}.weight"] = v[e].contiguous()
        elif k.endswith("mlp.gate.weight") and prefix_map[0] != "mlp":
            out[k.replace("mlp.gate.weight", prefix_map[0] + ".gate.weight")] = v
        else:
            out[k] = v
    return out


def make(name, cls, cfg, seed, fused=False, bf16=False, shards=1, batch=2, seq=11, tweak_config=None, tweak_model=None):
    if ONLY and name not in ONLY:
        return
    torch.manual_seed(seed)
    cfg._attn_implementation = "eager"
    model = cls(cfg).float().eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif n.endswith("bias"):
                p.copy_(0.2 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
            if bf16:
                p.copy_(p.to(torch.bfloat16).float())
        if tweak_model:
            tweak_model(model)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq))
    counts = {}
    hooks = []
    for li, layer in enumerate(model.model.layers):
        gate = getattr(layer.mlp, "gate", None) or getattr(layer.mlp, "router", None)
        if gate is not None and hasattr(gate, "top_k"):
            def hook(mod, inp, out, li=li):
                counts[li] = torch.bincount(out[2].flatten(), minlength=mod.num_experts)
            hooks.append(gate.register_forward_hook(hook))
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
    if cfg.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
        grads.pop("lm_head.weight", None)
    if not fused:
        names = ("block_sparse_moe", "w1", "w3", "w2") if cfg.model_type == "mixtral" else ("mlp", "gate_proj", "up_proj", "down_proj")
        sd = per_expert_names(sd, names)
        grads = per_expert_names(grads, names)
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    dtype = torch.bfloat16 if bf16 else torch.float32
    tensors = {k: v.to(dtype).contiguous() for k, v in sd.items()}
    keys = sorted(tensors)
    if shards == 1:
        save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    else:
        weight_map = {}
        per = (len(keys) + shards - 1) // shards
        for s in range(shards):
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = {k: tensors[k] for k in keys[s * per:(s + 1) * per]}
            save_file(part, os.path.join(folder, fname), metadata={"format": "pt"})
            weight_map.update({k: fname for k in part})
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": sum(t.numel() * t.element_size() for t in tensors.values())},
                       "weight_map": weight_map}, f, indent=2)
    config = json.loads(cfg.to_json_string())
    if tweak_config:
        tweak_config(config)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    expected = {"input_ids": ids, "logits": out.logits.detach().float().contiguous(),
                "loss": out.loss.detach().reshape(1).float()}
    for li, c in counts.items():
        expected[f"router_counts.{li}"] = c.to(torch.int64)
    for k, g in grads.items():
        expected["grad." + k] = g.float().contiguous()
    save_file(expected, os.path.join(folder, "expected.safetensors"))
    print(name, float(out.loss))


def rope_theta_top_level(c):
    theta = c.pop("rope_parameters")["rope_theta"]
    c["rope_theta"] = theta


make("qwen3moe-tied-dense", transformers.Qwen3MoeForCausalLM, transformers.Qwen3MoeConfig(
    vocab_size=64, hidden_size=32, intermediate_size=40, moe_intermediate_size=24, num_hidden_layers=3,
    num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_experts=6, num_experts_per_tok=2,
    norm_topk_prob=True, mlp_only_layers=[1], tie_word_embeddings=True, max_position_embeddings=64,
    rope_theta=10000.0), seed=3, tweak_config=rope_theta_top_level)
make("mixtral-fused-sharded", transformers.MixtralForCausalLM, transformers.MixtralConfig(
    vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=64,
    sliding_window=5), seed=4, fused=True, shards=3, seq=9)
make("olmoe-bf16-clip", transformers.OlmoeForCausalLM, transformers.OlmoeConfig(
    vocab_size=64, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=4, num_experts=6, num_experts_per_tok=3, norm_topk_prob=True, clip_qkv=1.5,
    max_position_embeddings=64), seed=5, bf16=True)
# The shapes of ../shared/fixtures/hf-moe: per-expert names, float32, one file each.
make("mixtral-tiny", transformers.MixtralForCausalLM, transformers.MixtralConfig(
    vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=256,
    rope_theta=1000000.0, rms_norm_eps=1e-6), seed=11, seq=12)
make("olmoe-tiny", transformers.OlmoeForCausalLM, transformers.OlmoeConfig(
    vocab_size=96, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=4, num_experts=6, num_experts_per_tok=2, norm_topk_prob=False,
    max_position_embeddings=256, rope_theta=10000.0, rms_norm_eps=1e-6), seed=12, seq=10)
make("qwen2moe-tiny", transformers.Qwen2MoeForCausalLM, transformers.Qwen2MoeConfig(
    vocab_size=96, hidden_size=32, intermediate_size=64, moe_intermediate_size=24,
    shared_expert_intermediate_size=40, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    num_experts=8, num_experts_per_tok=2, norm_topk_prob=False, max_position_embeddings=256,
    rope_theta=10000.0, rms_norm_eps=1e-6, qkv_bias=True), seed=13, seq=9)


# DeepSeek-V2/V3: multi-head latent attention, dense first layers, shared experts, scaled routing.
def deepseek_bias(model):
    """Nonzero e_score_correction_bias (a buffer: chooses experts, no gradient)."""
    for layer in model.model.layers:
        gate = getattr(layer.mlp, "gate", None) or getattr(layer.mlp, "router", None)
        if gate is not None and hasattr(gate, "e_score_correction_bias"):
            gate.e_score_correction_bias.copy_(0.3 * torch.randn_like(gate.e_score_correction_bias))


def deepseek_v2(**kw):
    base = dict(vocab_size=96, hidden_size=32, intermediate_size=56, moe_intermediate_size=16, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=4, n_routed_experts=8, n_shared_experts=2,
                num_experts_per_tok=3, first_k_dense_replace=1, kv_lora_rank=16, q_lora_rank=None,
                qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=12, max_position_embeddings=256,
                rope_theta=10000.0, rms_norm_eps=1e-6, norm_topk_prob=False, routed_scaling_factor=1.0, topk_method="greedy")
    base.update(kw)
    return transformers.DeepseekV2Config(**base)


def deepseek_v3(**kw):
    base = dict(vocab_size=96, hidden_size=32, intermediate_size=56, moe_intermediate_size=16, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=4, n_routed_experts=8, n_shared_experts=1,
                num_experts_per_tok=2, first_k_dense_replace=1, kv_lora_rank=16, q_lora_rank=24,
                qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=12, max_position_embeddings=256,
                rope_theta=10000.0, rms_norm_eps=1e-6, n_group=4, topk_group=2, norm_topk_prob=True,
                routed_scaling_factor=2.5, rope_interleave=True)
    base.update(kw)
    return transformers.DeepseekV3Config(**base)


# The shapes of ../shared/fixtures/hf-moe-next (V2: plain q_proj, greedy; V3: q latent,
# groups, renormalised and scaled sigmoid routing, interleaved rope).
make("deepseekv2-tiny", transformers.DeepseekV2ForCausalLM, deepseek_v2(), seed=21, seq=10)
make("deepseekv3-tiny", transformers.DeepseekV3ForCausalLM, deepseek_v3(), seed=22, seq=10)
# What those do not cover: V2 with a query latent, group-limited greedy, scaling, two dense
# layers, bf16 and sharded; V3 with a nonzero correction bias, no renormalisation,
# rotate_half rope, fused expert tensors.
make("deepseekv2-qlora-groups-bf16", transformers.DeepseekV2ForCausalLM, deepseek_v2(
    num_hidden_layers=4, first_k_dense_replace=2, q_lora_rank=20, topk_method="group_limited_greedy", n_group=4,
    topk_group=2, routed_scaling_factor=1.5, num_experts_per_tok=2), seed=23, bf16=True, shards=2, seq=9)
make("deepseekv3-bias-fused", transformers.DeepseekV3ForCausalLM, deepseek_v3(
    norm_topk_prob=False, rope_interleave=False, first_k_dense_replace=0, num_hidden_layers=2), seed=24, fused=True,
    seq=9, tweak_model=deepseek_bias)


# gpt-oss: attention sinks, q/k/v/o biases, alternating sliding and full layers, YaRN,
# router bias with a softmax over the chosen logits, fused interleaved experts with biases
# and the clamped SwiGLU.
def gpt_oss(**kw):
    base = dict(vocab_size=96, hidden_size=32, intermediate_size=16, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, head_dim=8, num_local_experts=4, num_experts_per_tok=2, sliding_window=6,
                max_position_embeddings=4096, rms_norm_eps=1e-6,
                rope_parameters={"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                                 "truncate": False, "original_max_position_embeddings": 4096, "rope_theta": 150000.0})
    base.update(kw)
    return transformers.GptOssConfig(**base)


# The shape of ../shared/fixtures/hf-moe-next/gptoss-tiny, sequences longer than the window.
make("gptoss-tiny", transformers.GptOssForCausalLM, gpt_oss(), seed=31, fused=True, seq=10)
# What it does not cover: a clamp that bites (limit 0.5), three layers with two sliding ones,
# truncated YaRN ranges, top-3 of 6, bf16 weights, two shards.
make("gptoss-clamp-bf16", transformers.GptOssForCausalLM, gpt_oss(
    swiglu_limit=0.5, num_hidden_layers=3, layer_types=["sliding_attention", "full_attention", "sliding_attention"],
    sliding_window=4, num_local_experts=6, num_experts_per_tok=3,
    rope_parameters={"rope_type": "yarn", "factor": 8.0, "beta_fast": 16.0, "beta_slow": 2.0, "truncate": True,
                     "original_max_position_embeddings": 64, "rope_theta": 10000.0}), seed=32, fused=True, bf16=True,
    shards=2, seq=9)


# gpt-oss as released: expert weights in MXFP4 (`*_blocks`, `*_scales`), quantised the
# OCP MX way (per 32 inputs, the scale 2^(floor(log2 max|x|) − 2), values rounded to the
# nearest E2M1, ties to the lower code); the reference is transformers' own dequantised
# forward and backward (Mxfp4Config(dequantize=True)), gradients for the float weights.
FP4 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])


def mxfp4(w):
    """w [E, in, out] -> blocks U8 [E, out, in/32, 16], scales U8 [E, out, in/32]."""
    t = w.transpose(1, 2).contiguous()
    E, R, C = t.shape
    g = t.reshape(E, R, C // 32, 32)
    e = (torch.floor(torch.log2(g.abs().amax(-1).clamp(min=2.0 ** -126))) - 2).clamp(-127, 127)
    idx = ((g / torch.pow(2.0, e)[..., None])[..., None] - FP4).abs().argmin(-1)
    return (idx[..., 0::2] | (idx[..., 1::2] << 4)).to(torch.uint8), (e + 127).to(torch.uint8)


def make_mxfp4(name, cfg, seed, batch=2, seq=9):
    if ONLY and name not in ONLY:
        return
    import tempfile
    torch.manual_seed(seed)
    model = transformers.GptOssForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_((1 + 0.3 * torch.randn_like(p)) if "norm" in n else (0.2 if n.endswith("bias") else 0.15) * torch.randn_like(p))
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    tensors = {}
    for k, v in model.state_dict().items():
        if k.endswith("experts.gate_up_proj") or k.endswith("experts.down_proj"):
            tensors[k + "_blocks"], tensors[k + "_scales"] = mxfp4(v)
        else:
            tensors[k] = v.contiguous()
    save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    config = json.loads(cfg.to_json_string())
    config["quantization_config"] = {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    ref = transformers.GptOssForCausalLM.from_pretrained(folder, quantization_config=transformers.Mxfp4Config(dequantize=True),
                                                         dtype=torch.float32, attn_implementation="eager").train(False)
    for p in ref.parameters():
        p.requires_grad_(True)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq))
    counts = {}
    for li, layer in enumerate(ref.model.layers):
        def hook(mod, inp, out, li=li):
            counts[li] = torch.bincount(out[2].flatten(), minlength=mod.num_experts)
        layer.mlp.router.register_forward_hook(hook)
    out = ref(input_ids=ids, labels=ids)
    out.loss.backward()
    expected = {"input_ids": ids, "logits": out.logits.detach().float().contiguous(), "loss": out.loss.detach().reshape(1).float()}
    for li, c in counts.items():
        expected[f"router_counts.{li}"] = c.to(torch.int64)
    for k, p in ref.named_parameters():
        expected["grad." + k] = p.grad.detach().float().contiguous()
    save_file(expected, os.path.join(folder, "expected.safetensors"))
    print(name, float(out.loss.detach()))


make_mxfp4("gptoss-mxfp4", gpt_oss(hidden_size=64, intermediate_size=32, head_dim=16), seed=33)


# The MXFP4 quantiser itself, for the library's assembly of changed gpt-oss experts:
# weights [E, in, out] with the cases that decide codes (exact ties between two codes, a
# zero group, groups whose largest value is just above and below a power of two, tiny
# and large magnitudes) and the blocks and scales `mxfp4` makes of them.
def make_mxfp4_vectors(name):
    if ONLY and name not in ONLY:
        return
    torch.manual_seed(34)
    w = torch.randn(3, 64, 48) * 0.2
    w[0, :32, 0] = 0.0
    w[0, :32, 1] = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.25, -0.75, -1.25, -1.75, -2.5, -3.5, -5.0, 6.0, 0.0] * 2)
    w[0, 32:, 1] = torch.tensor([0.125, 4.0 - 2 ** -20, 0.3] * 10 + [0.0, 0.0])
    w[1, :32, 2] = torch.randn(32) * 1e-30
    w[1, 32:, 2] = torch.randn(32) * 1e30
    w[2] = torch.randn(64, 48) * torch.logspace(-6, 6, 48)
    blocks, scales = mxfp4(w)
    save_file({"weight": w.contiguous(), "blocks": blocks.contiguous(), "scales": scales.contiguous()},
              os.path.join(OUT, name + ".safetensors"))
    print(name)


make_mxfp4_vectors("mxfp4-quantizer")
