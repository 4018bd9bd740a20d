"""Guidance and the pipeline: the TaxaGuide formula inside the pipeline, save/load round trip, seeded determinism, bad input,
and the pipeline reproducing `taxanb.guidance.sample` on a trained (smoke) stage."""
import json
from pathlib import Path
import pytest, torch
from torch import nn

from taxanb.guidance import (TaxaDiffusionPipeline, GuidanceError, guide, guided_eps, tiny_pipeline, trait_grid, guidance_sweep)

KW = dict(num_inference_steps=3)


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline(image_size=16)


class Recorder(nn.Module):
    "Wraps a UNet; records each call's batch and context."
    def __init__(self, unet):
        super().__init__(); self.inner = unet; self.calls = []
    config = property(lambda self: self.inner.config)
    device = property(lambda self: self.inner.device)
    dtype = property(lambda self: self.inner.dtype)
    def forward(self, x, t, encoder_hidden_states):
        out = self.inner(x, t, encoder_hidden_states=encoder_hidden_states)
        self.calls.append((x.clone(), encoder_hidden_states.clone(), out.sample.clone()))
        return out


def test_formula_exact_with_stub_unet():
    class Stub(nn.Module):
        def forward(self, x, t, encoder_hidden_states):
            from types import SimpleNamespace
            return SimpleNamespace(sample=x * encoder_hidden_states.sum((1, 2))[:, None, None, None] - 0.25)
    x, ck, ca = torch.randn(2, 3, 4, 4), torch.randn(2, 6, 8), torch.randn(2, 6, 8)
    ek, ea = x * ck.sum((1, 2))[:, None, None, None] - 0.25, x * ca.sum((1, 2))[:, None, None, None] - 0.25
    for s in (0.0, 1.0, 6.0, 9.5):
        torch.testing.assert_close(guided_eps(Stub(), x, 10, ck, ca, s), ea + s * (ek - ea))
    torch.testing.assert_close(guide(ek, ea, 6.0), ea + 6.0 * (ek - ea))


def test_pipeline_taxaguide_uses_the_ancestor_in_one_batched_call(pipe):
    rec = Recorder(pipe.unet); inner = pipe.unet
    pipe.unet = rec
    try: pipe(["Henzelops trelsyica", "genus: Henzelops"], ancestor="order", guidance_scale=6.0, **KW)
    finally: pipe.unet = inner
    assert len(rec.calls) == 3                                   # one UNet call per step, both branches in it
    labels, upto = pipe.labels_for(["Henzelops trelsyica", "genus: Henzelops"])
    ctx_k, ctx_anc = pipe.context(labels, upto), pipe.context(labels, torch.tensor([3, 3]))   # order: level 3 (kingdom first)
    x, ctx, out = rec.calls[0]
    assert len(x) == 4 and torch.equal(x[:2], x[2:])
    torch.testing.assert_close(ctx[:2], ctx_anc); torch.testing.assert_close(ctx[2:], ctx_k)
    # the default ancestor is the first level, kingdom (Eq. 6), for a species and a class alike; a kingdom image falls back to the null condition
    taxa = ["Henzelops trelsyica", "class: Bervonichthyes", "kingdom: Plaplalalia"]
    rec.calls.clear(); pipe.unet = rec
    try: pipe(taxa, **KW)
    finally: pipe.unet = inner
    labels, upto = pipe.labels_for(taxa)
    assert upto.tolist() == [6, 2, 0] and pipe.levels[0] == "kingdom"
    ctx = rec.calls[0][1]
    kingdom = pipe.context(labels[:1], torch.tensor([0]))[0]
    torch.testing.assert_close(ctx[0], kingdom); torch.testing.assert_close(ctx[1], kingdom)
    torch.testing.assert_close(ctx[2], pipe.context(labels[2:], torch.tensor([0]), drop=torch.tensor([True]))[0])


def test_guidance_interval_halves_the_unguided_steps(pipe):
    rec = Recorder(pipe.unet); inner = pipe.unet; pipe.unet = rec
    try: pipe(["Henzelops trelsyica"], interval=(0.5, 1.0), num_inference_steps=4)
    finally: pipe.unet = inner
    assert [len(c[0]) for c in rec.calls] == [1, 1, 2, 2]


def test_round_trip_same_seed_same_images(tmp_path):
    p1 = tiny_pipeline(image_size=16, seed=3)
    p1.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["_class_name"] == "TaxaDiffusionPipeline" and index["conditioning"] == ["taxanb.guidance", "TaxaConditioning"]
    assert index["scheduler"][1] == "DDIMScheduler"
    p2 = TaxaDiffusionPipeline.from_pretrained(tmp_path / "pipe")
    taxa = ["Henzelops trelsyica", "family: Vaerhaidae", "order: Tosdyniformes"]
    for kw in (dict(), dict(guidance="cfg", scheduler="dpm++")):
        assert torch.equal(p1(taxa, seed=7, **KW, **kw).images, p2(taxa, seed=7, **KW, **kw).images)
    assert p2.taxonomy == p1.taxonomy and p2.levels == p1.levels


def test_seeded_determinism(pipe):
    taxa = ["Henzelops trelsyica", "family: Vaerhaidae"]
    for sched in ("ddim", "dpm++"):
        a = pipe(taxa, num_images_per_taxon=2, seed=5, scheduler=sched, **KW).images
        assert torch.equal(a, pipe(taxa, num_images_per_taxon=2, seed=5, scheduler=sched, **KW).images)
        assert not torch.equal(a, pipe(taxa, num_images_per_taxon=2, seed=6, scheduler=sched, **KW).images)


def test_bad_input(pipe, tmp_path):
    with pytest.raises(GuidanceError, match="non-empty"): pipe([], **KW)
    with pytest.raises(GuidanceError, match="not a taxon"): pipe(["Felis catus"], **KW)
    with pytest.raises(GuidanceError, match="no rank 'tribe'"): pipe(["tribe: Vumtraemata"], **KW)
    with pytest.raises(GuidanceError, match="not above the target level"): pipe(["genus: Henzelops"], ancestor="genus", **KW)
    with pytest.raises(GuidanceError, match="not above the target level"): pipe(["Henzelops trelsyica", "order: Tosdyniformes"], ancestor="family", **KW)
    with pytest.raises(GuidanceError, match="valid levels"): pipe(["Henzelops trelsyica"], ancestor="tribe", **KW)
    with pytest.raises(GuidanceError, match="'ddim'"): pipe(["Henzelops trelsyica"], scheduler="pndm", **KW)
    with pytest.raises(GuidanceError, match="0 <= lo < hi <= 1"): pipe(["Henzelops trelsyica"], interval=(0.8, 0.2), **KW)
    with pytest.raises(GuidanceError, match="taxaguide"): pipe(["Henzelops trelsyica"], guidance="classifier", **KW)
    # a model trained down to family only: species and genus are refused
    from taxanb.backbone import build_backbone, tiny_configs
    from taxanb.conditioning import TaxaConditioner
    bb = build_backbone(tiny_configs(16)); texts = pipe.texts
    fam = TaxaDiffusionPipeline.from_parts(bb, TaxaConditioner(texts.levels, bb.text_width, ff=512), texts, trained_upto=4)
    with pytest.raises(GuidanceError, match="levels kingdom, phylum, class, order, family"): fam(["Henzelops trelsyica"], **KW)
    assert fam(["family: Vaerhaidae"], **KW).images.shape == (1, 3, 16, 16)
    from diffusers import PNDMScheduler
    with pytest.raises(GuidanceError, match="PNDM"):
        TaxaDiffusionPipeline(pipe.unet, pipe.text_encoder, pipe.tokenizer, PNDMScheduler(), pipe.conditioning)


def test_figure_helpers(pipe):
    fig, imgs = guidance_sweep(pipe, ["Henzelops trelsyica"], scales=(1, 6), **KW)
    assert imgs.shape == (2, 3, 16, 16)
    fig, imgs = trait_grid(pipe, ["Henzelops trelsyica", "order: Tosdyniformes"], **KW)
    assert imgs.shape == (14, 3, 16, 16) and bool((imgs[9] == 1).all())       # 7 levels x 2 taxa; row family, column order: blank


@pytest.mark.timeout(900)
def test_pipeline_from_stage_reproduces_train_sample(tmp_path):
    "A trained smoke stage (LoRA fused into the pipeline's UNet): pipeline CFG with DDIM == taxanb.guidance.sample."
    from taxanb.train import train_level, load_stage
    from taxanb.guidance import sample
    from taxanb.guidance import taxa_to_draw
    run = tmp_path / "run"
    one = dict(preset="smoke", progress=False, evaluate=False, single_taxon_ranks="drop")   # class first (two stages to order)
    s0 = train_level("class", run, **one)
    s1 = train_level("order", run, **one)
    model, bb, info = load_stage(s1)
    taxa, rows = taxa_to_draw(model.texts.tax, "order", 2)
    ref = sample(model, bb, rows, 1, guidance=3.0, steps=4, seed=11)
    p = TaxaDiffusionPipeline.from_stage(s1)
    assert not getattr(p.unet, "peft_config", None)                          # LoRA fused: a plain UNet
    out = p(taxa, guidance="cfg", guidance_scale=3.0, num_inference_steps=4, seed=11, scheduler="ddim").images
    torch.testing.assert_close(out, ref, atol=2e-3, rtol=0)
    with pytest.raises(GuidanceError, match="levels class, order"): p(["Henzelops trelsyica"], **KW)
    # the tables' drawing: guided_draw with CFG reproduces taxanb.guidance.sample from the same noise, TaxaGuide differs from it
    from taxanb.guidance import guided_draw, guided_generator, _batch_seed
    ref_draw = sample(model, bb, rows, 1, guidance=3.0, steps=4, seed=_batch_seed(11, 0))
    torch.testing.assert_close(guided_draw(s1, rows, "order", "cfg", 3.0, 4, seed=11), ref_draw, atol=2e-3, rtol=0)
    tg = guided_draw(s1, rows, "order", "taxaguide", 3.0, 4, seed=11)
    assert tg.shape == ref_draw.shape and not torch.allclose(tg, ref_draw, atol=2e-3)
    gen = guided_generator(s1, "cfg", 3.0, 4)
    torch.testing.assert_close(gen.many(taxa, "order", 2, [11, 12])[:2], gen(taxa[0], "order", 2, 11), atol=1e-5, rtol=0)


@pytest.mark.timeout(900)
def test_baselines_draw_through_the_pipeline(tmp_path):
    "A Table 1 baseline's stage gives a pipeline conditioned on lineage prompts: CFG equals taxanb.guidance.sample; it saves and loads."
    from taxanb.train import train_level, load_stage
    from taxanb.guidance import sample
    from taxanb.guidance import taxa_to_draw
    from taxanb.guidance import guided_draw, _batch_seed
    one = dict(preset="smoke", progress=False, evaluate=False, single_taxon_ranks="drop")
    for strategy in ("lora-prompt", "zero-shot"):
        st = train_level(None, tmp_path / strategy, strategy=strategy, **one)
        model, bb, info = load_stage(st)
        taxa, rows = taxa_to_draw(model.texts.tax, "genus", 2)
        ref = sample(model, bb, rows, model.texts.level("genus"), guidance=3.0, steps=4, seed=_batch_seed(11, 0))
        torch.testing.assert_close(guided_draw(st, rows, "genus", "cfg", 3.0, 4, seed=11), ref, atol=2e-3, rtol=0)
    p = TaxaDiffusionPipeline.from_stage(st)
    assert p.conditioning.conditioner is None and p.levels == model.texts.levels      # every level: the lineage prompt down to it
    with pytest.raises(GuidanceError, match="lineage prompt"): p.conditioning([], 0)
    p.save_pretrained(tmp_path / "pipe")
    q = TaxaDiffusionPipeline.from_pretrained(tmp_path / "pipe")
    a = p(taxa, guidance="cfg", guidance_scale=3.0, num_inference_steps=3, seed=5).images
    torch.testing.assert_close(q(taxa, guidance="cfg", guidance_scale=3.0, num_inference_steps=3, seed=5).images, a, atol=1e-5, rtol=0)
