"""Loads checkpoints written by Tessera in transformers and prints the loss it computes
next to the reference loss, for the record in whitepaper-notes/engine.md.
    TESSERA_EXPORT_DIR=/tmp/export swift test --filter ExportForTransformers
    python scripts/check_transformers_loads.py /tmp/export
"""
import os, sys, torch, transformers
from safetensors.torch import load_file
root = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
refs = {n: os.path.join(here, "..", "Tests", "Fixtures", "reference", n) for n in os.listdir(root)}
for name in sorted(os.listdir(root)):
    model = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(root, name), dtype=torch.float32,
                                                              attn_implementation="eager").eval()
    exp = load_file(os.path.join(refs[name], "expected.safetensors"))
    with torch.no_grad():
        out = model(input_ids=exp["input_ids"], labels=exp["input_ids"])
    print(f"{name}: transformers loss {out.loss.item():.7f}, reference {exp['loss'].item():.7f}, "
          f"max |logit diff| {(out.logits - exp['logits']).abs().max().item():.2e}")
