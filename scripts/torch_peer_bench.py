"""Peer timing: the same MoE work in PyTorch (eager, CPU, 2 threads) via transformers.

../shared/bench/torch_peer_bench.py with a family choice: the reference shape in the
Mixtral layout (as there) or in DeepSeek-V2's, built with the proportions of
`tessera bench --family deepseek_v2` (ModelConfig.deepSeek: per head nope = v = 64,
rope 32, key/value latent 128, plain q_proj, two shared experts, a dense first layer
2048 wide). Prints tokens/s for (a) held-out evaluation (forward + loss, no grad) and
(b) one sparse fine-tuning step: only the listed experts train (AdamW), the rest frozen.
usage: python torch_peer_bench.py [--family mixtral|deepseek_v2] [hidden inter layers experts topk seq batch trainable_per_layer]
"""
import sys, time, torch, transformers
torch.set_num_threads(2)
args = sys.argv[1:]
family = "mixtral"
if args[:1] == ["--family"]:
    family, args = args[1], args[2:]
a = [int(x) for x in args] or [512, 1024, 4, 8, 2, 256, 8, 2]
H, I, L, E, K, T, B, TR = a
heads = 8
if family == "mixtral":
    cfg = transformers.MixtralConfig(vocab_size=256, hidden_size=H, intermediate_size=I, num_hidden_layers=L,
        num_attention_heads=heads, num_key_value_heads=heads, num_local_experts=E, num_experts_per_tok=K,
        max_position_embeddings=4096, tie_word_embeddings=False)
    model_class = transformers.MixtralForCausalLM
elif family == "deepseek_v2":
    head = H // heads
    cfg = transformers.DeepseekV2Config(vocab_size=256, hidden_size=H, intermediate_size=2 * I, moe_intermediate_size=I,
        num_hidden_layers=L, num_attention_heads=heads, num_key_value_heads=heads, n_routed_experts=E,
        num_experts_per_tok=K, n_shared_experts=2, first_k_dense_replace=1, kv_lora_rank=H // 4, q_lora_rank=None,
        qk_nope_head_dim=head, qk_rope_head_dim=head // 2, v_head_dim=head, routed_scaling_factor=1.0,
        topk_method="greedy", max_position_embeddings=4096, tie_word_embeddings=False)
    model_class = transformers.DeepseekV2ForCausalLM
else:
    sys.exit(f"unknown family {family}: mixtral or deepseek_v2")
cfg._attn_implementation = "sdpa"
torch.manual_seed(0)
m = model_class(cfg)
ids = torch.randint(0, 256, (B, T))
m.eval()
def timeit(fn, n):
    fn(); t0 = time.perf_counter()
    for _ in range(n): fn()
    return (time.perf_counter() - t0) / n
def ev():
    with torch.no_grad(): m(input_ids=ids, labels=ids).loss.item()
te = timeit(ev, 3)
for p in m.parameters(): p.requires_grad_(False)
train = []
for layer in m.model.layers:
    ex = getattr(layer.mlp, "experts", None)
    if ex is None:
        continue   # DeepSeek's dense first layer has no experts
    # transformers fuses experts into 3-D tensors; train whole fused tensors but mask grads to the chosen experts
    for p in (ex.gate_up_proj, ex.down_proj):
        p.requires_grad_(True); train.append(p)
opt = torch.optim.AdamW(train, lr=1e-4)
mask = torch.zeros(E, dtype=torch.bool); mask[:TR] = True
def step():
    opt.zero_grad(set_to_none=True)
    loss = m(input_ids=ids, labels=ids).loss
    loss.backward()
    for p in train: p.grad[~mask] = 0
    opt.step()
tt = timeit(step, 3)
tok = B * T
print(f"config {family} H={H} I={I} L={L} E={E} K={K} T={T} B={B} trainable/layer={TR}")
print(f"torch eval  tokens/s {tok/te:10.0f}  ({te*1000:.0f} ms/batch)")
print(f"torch train tokens/s {tok/tt:10.0f}  ({tt*1000:.0f} ms/step)")
