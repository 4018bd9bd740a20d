"""Discriminative Class Tokens: gradient reaches only the token, bad input, early stopping, and a smoke DCT run on the
synthetic world (tiny backbone, the oracle's species head as guide) with save/load of the token."""
from pathlib import Path
import pytest, torch
from torch import nn
import torch.nn.functional as F

from taxanb.guidance import tiny_pipeline, TaxaDiffusionPipeline
from taxanb.conditioning import TokenError
from taxanb.dct import (ClassToken, DCTError, OracleHead, train_class_token, evaluate_class_token, class_token_images,
                        init_embedding, dct_prompts, PAPER_TEMPLATES, TOKEN)

SP = "Henzelops trelsyica"


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline(image_size=32)


class Fixed(nn.Module):
    "A 'classifier' whose predictions follow a schedule of correct counts, connected to the images for backward."
    def __init__(self, n=48, target=0, schedule=(5,)):
        super().__init__(); self.w = nn.Parameter(torch.zeros(1)); self.n, self.target, self.schedule, self.i = n, target, list(schedule), 0
    def forward(self, x):
        B = len(x); k = self.schedule[min(self.i, len(self.schedule) - 1)] if B == 5 else B
        if B == 5: self.i += 1
        logits = torch.zeros(B, self.n); logits[:k, self.target] = 10; logits[k:, (self.target + 1) % self.n] = 10
        return logits + 0 * x.mean() + self.w


def test_gradient_reaches_only_the_token(pipe):
    tok = pipe.add_class_token(ClassToken(init_embedding(pipe, "fish")))
    try:
        labels, upto = pipe.labels_for([SP, SP])
        prompts = dct_prompts(PAPER_TEMPLATES, pipe.texts.table[-1][int(labels[0, -1])], 2)
        ctx = pipe.context(labels, upto, level_text=prompts)
        x = pipe.denoise(ctx, pipe.base_context(labels, upto), 6.0, 2, grad_last=True)
        pipe.decode(x).mean().backward()
        leaked = [n for m in (pipe.unet, pipe.text_encoder, pipe.conditioning) for n, p in m.named_parameters() if p.grad is not None]
        assert leaked == [] and tok.embedding.grad is not None and tok.embedding.grad.abs().sum() > 0
        assert type(pipe.text_encoder.get_input_embeddings()) is nn.Embedding
    finally:
        pipe.remove_class_token(); tok.embedding.grad = None


def test_bad_input(pipe):
    head = Fixed()
    with pytest.raises(DCTError, match="0..47"): train_class_token(pipe, SP, head, 48, max_steps=1, num_inference_steps=1)
    with pytest.raises(DCTError, match="empty"): train_class_token(pipe, SP, head, 0, templates=(), max_steps=1, num_inference_steps=1)
    with pytest.raises(DCTError, match="logits"):
        train_class_token(pipe, SP, nn.Sequential(nn.Flatten(0), nn.Linear(2 * 3 * 32 * 32, 4)), 0, max_steps=1, num_inference_steps=1)
    with pytest.raises(Exception, match="not a taxon"): train_class_token(pipe, "Felis catus", head, 0, max_steps=1)
    with pytest.raises(TokenError, match="width 7"): pipe.add_class_token(ClassToken(torch.randn(7)))
    with pytest.raises(DCTError, match="not loaded"): class_token_images(pipe, SP, 1, num_inference_steps=1)


def test_early_stopping(pipe):
    kw = dict(num_inference_steps=1, max_steps=10)
    _, h = train_class_token(pipe, SP, Fixed(schedule=(2, 5)), 0, **kw)
    assert [r["correct"] for r in h] == [2, 5]                              # all correct: stop
    tok, h = train_class_token(pipe, SP, Fixed(schedule=(3, 3, 3, 3, 3, 3)), 0, patience=2, **kw)
    assert len(h) == 3 and tok.meta["stop"] == "no improvement" and tok.meta["best_step"] == 0
    tok, h = train_class_token(pipe, SP, Fixed(schedule=(1,)), 0, patience=2, max_steps=4, num_inference_steps=1)
    assert len(h) == 4 and tok.meta["stop"] == "max_steps"                 # < 50% correct: no early stop
    pipe.remove_class_token()


def test_dct_smoke_run_on_the_synthetic_world(pipe, tmp_path):
    from taxanb.synth import build_world, load_oracle
    world = build_world()
    oracle = load_oracle(world, steps=30, batch_size=32, eval_per_species=0, progress=False)
    head = OracleHead(oracle, "species"); ci = world.taxonomy.taxon(SP).id
    init = init_embedding(pipe, "fish")                               # the default superclass word
    tok, hist = train_class_token(pipe, SP, head, ci, max_steps=3, num_inference_steps=2)
    assert 1 <= len(hist) <= 3 and tok.meta["lr"] == pytest.approx(5e-4)
    assert all(set(h) >= {"step", "loss", "correct", "grad_norm"} for h in hist)
    assert torch.equal(tok.embedding, init) == (tok.meta["best_step"] == 0)
    f = tok.save(tmp_path / "S_c.safetensors")
    assert f.stat().st_size < 4096                                          # only the embedding (128 floats + header)
    # the token loads into any compatible pipeline: a saved-and-loaded copy draws the same images
    pipe.save_pretrained(tmp_path / "pipe")
    other = TaxaDiffusionPipeline.from_pretrained(tmp_path / "pipe")
    other.add_class_token(f)
    kw = dict(num_inference_steps=2)
    assert torch.equal(class_token_images(pipe, SP, 3, **kw), class_token_images(other, SP, 3, **kw))
    r = evaluate_class_token(other, SP, head, ci, n=5, **kw)
    assert r["n"] == 5 and 0 <= r["lo"] <= r["acc"] <= r["hi"] <= 1
    r2 = evaluate_class_token(other, SP, OracleHead(oracle, "genus"), world.taxonomy.taxon("Henzelops").id, n=5, **kw)   # another classifier
    assert r2["n"] == 5
    pipe.remove_class_token()


def test_the_pipeline_module_imports_no_dct_module():
    "The pipeline offers the token hook (`add_class_token`); DCT uses it, and patches nothing onto the pipeline."
    import subprocess, sys, inspect
    import taxanb.dct
    code = "import sys, taxanb.guidance; assert not [m for m in sys.modules if m.startswith('taxanb.dct')], 'taxanb.dct imported'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "@patch" not in inspect.getsource(taxanb.dct)


def _tiny_sd_and_vit(tmp_path):
    "A saved tiny Stable Diffusion folder and a saved tiny ViT classifier folder (3 bird classes)."
    from diffusers import StableDiffusionPipeline
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor
    from taxanb.backbone import build_backbone, tiny_configs
    from taxanb.guidance import make_scheduler
    bb = build_backbone(tiny_configs(32, latent=True), seed=0)
    StableDiffusionPipeline(vae=bb.vae, text_encoder=bb.text_encoder, tokenizer=bb.tokenizer, unet=bb.unet, scheduler=make_scheduler(bb.scheduler.config),
                            safety_checker=None, feature_extractor=None, requires_safety_checker=False).save_pretrained(tmp_path / "sd")
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                    num_labels=3, id2label={0: "Indigo Bunting", 1: "Painted Bunting", 2: "Lazuli Bunting"})
    ViTForImageClassification(cfg).save_pretrained(tmp_path / "vit")
    ViTImageProcessor(size=dict(height=32, width=32)).save_pretrained(tmp_path / "vit")
    return tmp_path / "sd", tmp_path / "vit"


def test_taxanb_dct_command_on_a_plain_stable_diffusion_folder(tmp_path, capsys):
    "`taxanb dct`: a token for a class label on a Stable Diffusion folder, guided by a Hugging Face classifier; never overwritten; bad input in one line."
    import json, time
    from taxanb.cli import main
    from diffusers import StableDiffusionPipeline
    sd_dir, vit_dir = _tiny_sd_and_vit(tmp_path)
    out = tmp_path / "tokens" / "painted.safetensors"
    args = ["dct", str(sd_dir), "--target", "Painted Bunting", "--classifier", f"hf:{vit_dir}", "--out", str(out),
            "--max-steps", "2", "--inference-steps", "2", "--eval", "2", "--no-progress"]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "class 1 of hf:" in said and "with token:" in said and "without token:" in said
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["target"] == "Painted Bunting" and rec["config"]["init_from"] == "a" and len(rec["history"]) == rec["train"]["steps"] <= 2
    # the token works in diffusers alone
    sd = StableDiffusionPipeline.from_pretrained(sd_dir, safety_checker=None, requires_safety_checker=False)
    sd.load_textual_inversion(str(out))
    assert "<S_c>" in sd.tokenizer.get_vocab()
    assert main(args) == 2 and "never overwritten" in capsys.readouterr().err            # earlier results are kept
    t0 = time.time()
    assert main(["dct", str(sd_dir), "--target", "x", "--classifier", "hf:google/vit-base-patch16-224", "--out", str(tmp_path / "b.safetensors")]) == 2
    assert time.time() - t0 < 1 and "huggingface-cli download" in capsys.readouterr().err   # offline (the tests' HF_HUB_OFFLINE=1): fast, with the fix
    assert main(["dct", str(tmp_path / "nope"), "--target", "x", "--classifier", f"hf:{vit_dir}", "--out", str(tmp_path / "c.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err


TIMM_FROM_CACHE = r'''
import json, os, sys, time, torch, timm
from pathlib import Path
from safetensors.torch import save_file
name = 'resnet10t.c3_in1k'                                   # a small timm classifier; its weights as `huggingface-cli download timm/NAME` leaves them
repo = Path(os.environ['HF_HUB_CACHE']) / f'models--timm--{name}'
snap = repo / 'snapshots' / ('0' * 40); snap.mkdir(parents=True)
(repo / 'refs').mkdir(); (repo / 'refs' / 'main').write_text('0' * 40)
torch.manual_seed(0); ref = timm.create_model(name, pretrained=False).eval()
save_file(ref.state_dict(), str(snap / 'model.safetensors'))
from taxanb.dct import load_classifier, DCTError
clf = load_classifier(f'timm:{name}')
from taxanb.dct import ImageClassifier
x = torch.rand(2, 3, 64, 64) * 2 - 1                           # images in [-1, 1]
cfg = timm.data.resolve_data_config({}, model=ref)             # timm's own input size, crop and statistics for this model
want = ImageClassifier(ref, cfg['input_size'][-1], int(cfg['input_size'][-1] / cfg['crop_pct']), cfg['mean'], cfg['std']).eval()
with torch.no_grad(): diff = float((clf(x) - want(x)).abs().max())
t0 = time.time()
try: load_classifier('timm:resnet18.a1_in1k'); missing = 'loaded'
except DCTError as e: missing = str(e)
print(json.dumps(dict(size=clf.size, want_size=cfg['input_size'][-1], max_diff=diff, missing=missing, seconds=time.time() - t0)))
'''


def test_timm_classifier_from_the_local_cache(tmp_path):
    "`load_classifier('timm:NAME')` offline: the weights from the local Hugging Face cache give timm's own outputs; missing weights stop in < 1 s naming the download."
    pytest.importorskip("timm")
    import json, os, subprocess, sys
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", TIMM_FROM_CACHE], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["size"] == got["want_size"] and got["max_diff"] < 1e-5, got     # the cached weights, timm's preprocessing
    assert "huggingface-cli download timm/resnet18.a1_in1k" in got["missing"] and got["seconds"] < 1, got
