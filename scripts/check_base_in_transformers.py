"""Loads the bundled base model (assembled from Experts/) in transformers and prints its
loss on a token file, to compare with `tessera eval` on the same file.
    tessera assemble --library Experts --out /tmp/base-hf
    python scripts/check_base_in_transformers.py /tmp/base-hf TOKENS.safetensors [N_WINDOWS]
"""
import sys, torch, transformers
from safetensors.torch import load_file
model = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32, attn_implementation="eager").eval()
ids = load_file(sys.argv[2])["input_ids"]
if len(sys.argv) > 3:
    ids = ids[: int(sys.argv[3])]
total, count = 0.0, 0
with torch.no_grad():
    for i in range(0, ids.shape[0], 32):
        batch = ids[i : i + 32]
        logits = model(input_ids=batch).logits[:, :-1].float()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum")
        total += loss.item()
        count += batch[:, 1:].numel()
print(f"transformers {transformers.__version__}: mean loss {total / count:.7f} over {count} tokens")
