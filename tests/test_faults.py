"""Faults (issue 17): a real SIGKILL at each point of a stage's training, of a checkpoint's writing, of a stage folder's writing
and of a cache build (tiny base, world), and checkpoints or caches damaged by hand. Every case resumes or rebuilds to the
same weights as an uninterrupted run (seeded, one thread in every process), or ends in a clear error; nothing is lost.
The killed process kills itself with SIGKILL at a chosen point (a patched function), so each case is deterministic; it is
forked from a server process that has torch, diffusers and taxanb imported (multiprocessing's forkserver), so each case takes
seconds (smoke preset, tiny backbone, 6 steps, a checkpoint every 2, latents not cached)."""
import json, multiprocessing, os, shutil, signal, sys, textwrap, warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from outcomes import saw
from taxanb.core import RunError
from taxanb.train import TrainConfig, data_key, checkpoints, load_data, read_losses, tiny_base, train_level

STAGE = 'stage-00-kingdom'
KW = dict(preset='smoke', steps=6, checkpoint_every=2, progress=False, evaluate=False, cache_latents=False)
FORK = multiprocessing.get_context('forkserver')
FORK.set_forkserver_preload(['torch', 'accelerate', 'taxanb.train', 'taxanb.synth', 'diffusers.models.unets.unet_2d_condition',
                             'diffusers.models.autoencoders.autoencoder_kl', 'diffusers.schedulers.scheduling_ddpm', 'diffusers.optimization',
                             'diffusers.training_utils', 'transformers.models.clip.modeling_clip', 'torch.utils.tensorboard'])


def in_child(script: str, *args) -> int:
    "Run `script` (sys.argv = ['-c', *args]) in a new process forked from the preloaded server; its exit code (-9: SIGKILL)."
    p = FORK.Process(target=exec, args=(f"import sys; sys.argv = {['-c', *map(str, args)]!r}\n" + script, {'__name__': '__main__'}))
    p.start(); p.join(300)
    if p.exitcode is None: p.kill(); p.join()
    return p.exitcode


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    "The same thread count in the killed process and here: the same float reductions, so weights compare bit for bit."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def straight(tmp_path_factory, one_thread):
    "The stage trained without interruption: what every resumed run must end with."
    return train_level(None, tmp_path_factory.mktemp('straight')/'run', **KW)


def same_weights(a: Path, b: Path):
    for f in ('conditioner/model.safetensors', 'lora/pytorch_lora_weights.safetensors'):
        A, B = load_file(a/f), load_file(b/f)
        assert A.keys() == B.keys() and all(torch.equal(A[k], B[k]) for k in A), f'{f} differs from the uninterrupted run'


def resumed_right(run: Path, straight: Path, resumed_from: int, **kw) -> dict:
    "Train the stage again in `run` (it resumes); check it ends as the uninterrupted run, each step logged once, nothing half-written left."
    stage = train_level(None, run, **KW, **kw)
    info = json.loads((stage/'stage.json').read_text())
    assert info['resumed_from'] == resumed_from and info['steps'] == KW['steps'], info
    same_weights(stage, straight)
    assert [r['step'] for r in read_losses(run) if r['stage'] == STAGE] == list(range(1, KW['steps'] + 1))
    ck = run/'checkpoints'/STAGE
    assert [p.name for p in checkpoints(ck)][-2:] == ['checkpoint-0000004', 'checkpoint-0000006']
    assert not [p for p in list(ck.iterdir()) + list(run.iterdir()) if p.name.endswith('.tmp')]
    return info


KILL = textwrap.dedent("""
    import os, signal, sys, torch
    torch.set_num_threads(1)
    import accelerate, shutil, taxanb.train as T
    run, where, at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    def die(*_): os.kill(os.getpid(), signal.SIGKILL)
    ck = f'checkpoint-{at:07d}'
    if where == 'step':            # between checkpoints: right after step `at` is logged
        log = T.LossLog.__call__
        T.LossLog.__call__ = lambda self, stage, step, *a: (log(self, stage, step, *a), stage == 'stage-00-kingdom' and step == at and die())
    elif where == 'files':         # while accelerate writes the checkpoint's files (one is cut short)
        save = accelerate.Accelerator.save_state
        def save_state(self, out, *a, **k):
            r = save(self, out, *a, **k)
            if out.endswith(ck + '.tmp'): os.truncate(os.path.join(out, 'optimizer.bin'), 1000); die()
            return r
        accelerate.Accelerator.save_state = save_state
    elif where == 'marker':        # every file written and flushed, before trainer_state.json
        wj = T.write_json
        T.write_json = lambda p, obj: die() if str(p).endswith(ck + '.tmp/trainer_state.json') else wj(p, obj)
    elif where == 'rename':        # marked whole, not yet renamed into place
        rp = os.replace
        os.replace = lambda a, b: die() if str(b).endswith(ck) else rp(a, b)
    elif where == 'prune':         # the next one renamed into place, checkpoint `at` (the oldest) not yet pruned
        rm = shutil.rmtree
        shutil.rmtree = lambda p, *a, **k: die() if os.path.basename(p) == ck else rm(p, *a, **k)
    elif where == 'stage':         # trained; while the stage folder is written
        sl = T.save_lora
        T.save_lora = lambda *a, **k: (sl(*a, **k), die())
    T.train_level(None, run, preset='smoke', steps=6, checkpoint_every=2, progress=False, evaluate=False, cache_latents=False)
    sys.exit(3)                    # not killed: the test fails
""")


def killed(run: Path, where: str, at: int) -> Path:
    assert in_child(KILL, run, where, at) == -signal.SIGKILL
    assert not (run/STAGE/'stage.json').exists()
    return run


# ================================================================ SIGKILL while a stage trains or writes

@pytest.mark.parametrize('where, at, resumes_from', [
    ('step', 1, 0),          # before the first checkpoint: starts again, the log keeps each step once
    ('step', 5, 4),          # between two checkpoints
    ('files', 4, 2),         # checkpoint 4 half written: never looks whole, the one before is used
    ('marker', 4, 2),        # its files flushed, not yet marked whole
    ('rename', 4, 2),        # marked whole in its temporary folder, not yet renamed
    ('prune', 2, 6),         # checkpoint 6 in place, 2 not yet pruned: three checkpoints, resumes from the newest
    ('stage', 6, 6),         # trained to the end, killed while the stage folder is written: it is written again
])
def test_sigkill_then_resume_gives_the_uninterrupted_weights(tmp_path, straight, where, at, resumes_from):
    run = killed(tmp_path/'run', where, at)
    ck = run/'checkpoints'/STAGE
    left = sorted(p.name for p in ck.iterdir()) if ck.exists() else []
    if where in ('files', 'marker', 'rename'): assert f'checkpoint-{at:07d}.tmp' in left and f'checkpoint-{at:07d}' not in left, left
    if where == 'prune': assert [p.name for p in checkpoints(ck)] == ['checkpoint-0000002', 'checkpoint-0000004', 'checkpoint-0000006']
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        info = resumed_right(run, straight, resumes_from)
    assert info['skipped_checkpoints'] == [] and not [x for x in w if 'is damaged' in str(x.message)]   # a kill needs no repair
    saw('fault survived')


# ================================================================ a damaged checkpoint (issue 17, finding 1)

@pytest.fixture(scope='module')
def part_trained(tmp_path_factory, one_thread):
    "A stage stopped after 4 of its 6 steps: checkpoints 2 and 4 (copied for each case, which damages them)."
    run = tmp_path_factory.mktemp('part')/'run'
    assert train_level(None, run, stop_after=4, **KW) is None
    return run


def damage_newest(ck: Path, how: str):
    c = ck/'checkpoint-0000004'
    if how == 'model cut': os.truncate(c/'model.safetensors', 1000)            # the repro: `truncate -s 1000`
    elif how == 'optimizer cut': os.truncate(c/'optimizer.bin', 1000)
    elif how == 'rng state gone': (c/'random_states_0.pkl').unlink()
    elif how == 'marker garbage': (c/'trainer_state.json').write_text('{"step": 4, "fil')
    elif how == 'trained weight missing':                                          # whole files, but one trained weight not in them
        sd = load_file(c/'model.safetensors'); lost = sorted(k for k in sd if 'level_modules' in k)[0]; del sd[lost]
        save_file(sd, str(c/'model.safetensors'))
        st = json.loads((c/'trainer_state.json').read_text()); st['files']['model.safetensors'] = (c/'model.safetensors').stat().st_size
        (c/'trainer_state.json').write_text(json.dumps(st))
    elif how == 'old checkpoint, model cut':                                       # written before checkpoints listed their files
        st = json.loads((c/'trainer_state.json').read_text()); st.pop('files'); (c/'trainer_state.json').write_text(json.dumps(st))
        os.truncate(c/'model.safetensors', 1000)


@pytest.mark.parametrize('how', ['model cut', 'optimizer cut', 'rng state gone', 'marker garbage', 'trained weight missing', 'old checkpoint, model cut'])
def test_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, part_trained, straight, how):
    run = tmp_path/'run'; shutil.copytree(part_trained, run)
    ck = run/'checkpoints'/STAGE
    damage_newest(ck, how)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        info = resumed_right(run, straight, 2)
    msg = [str(x.message) for x in w if 'is damaged' in str(x.message)]
    assert len(msg) == 1 and f'{ck/"checkpoint-0000004"} is damaged' in msg[0] and 'resuming from checkpoint-0000002 (step 2)' in msg[0], msg
    assert info['resumed_checkpoint'] == 'checkpoint-0000002'
    assert [(s['checkpoint'], s['set_aside_as']) for s in info['skipped_checkpoints']] == [('checkpoint-0000004', 'bad-checkpoint-0000004')]
    assert (ck/'bad-checkpoint-0000004').is_dir()                                  # kept for a look, never deleted
    saw('fault survived')


def test_checkpoints_hold_only_the_trained_weights(part_trained):
    "A checkpoint holds LoRA and the level modules (what trains), never the frozen UNet it starts from."
    sd = load_file(part_trained/'checkpoints'/STAGE/'checkpoint-0000004'/'model.safetensors')
    assert any('lora' in k for k in sd) and any('level_modules.0' in k for k in sd)
    assert not [k for k in sd if k.startswith('unet.') and 'lora' not in k], 'frozen UNet weights in the checkpoint'


def test_gradient_checkpointing_gives_the_same_weights(tmp_path, straight):
    "Recomputing the UNet's activations in backward changes the memory, not the result."
    stage = train_level(None, tmp_path/'run', gradient_checkpointing=True, **KW)
    assert json.loads((stage/'stage.json').read_text())['settings']['gradient_checkpointing'] is True
    for f in ('conditioner/model.safetensors', 'lora/pytorch_lora_weights.safetensors'):
        A, B = load_file(stage/f), load_file(straight/f)
        assert A.keys() == B.keys() and all(torch.allclose(A[k], B[k], rtol=0, atol=1e-6) for k in A), f


def test_learning_curve_and_training_time_survive_a_stop(tmp_path, straight):
    "Before: a stage's curve points and training seconds from before a kill were lost on resume (the curve began where it resumed)."
    run = tmp_path/'run'
    assert train_level(None, run, stop_after=4, curve_every=2, **KW) is None
    stage = train_level(None, run, curve_every=2, **KW)
    info = json.loads((stage/'stage.json').read_text())
    assert info['resumed_from'] == 4 and [p['step'] for p in info['curve']] == [2, 4, 6], info.get('curve')
    secs = [p['seconds'] for p in info['curve']]
    assert secs == sorted(secs) and info['seconds'] + 0.05 >= secs[-1] > 0, (secs, info['seconds'])   # points are rounded to 0.1 s, the stage to 0.01 s
    same_weights(stage, straight)
    saw('fault survived')


def test_every_checkpoint_damaged_starts_the_stage_again(tmp_path, part_trained, straight):
    run = tmp_path/'run'; shutil.copytree(part_trained, run)
    ck = run/'checkpoints'/STAGE
    for c in checkpoints(ck): os.truncate(c/'model.safetensors', 1000)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        info = resumed_right(run, straight, 0)
    assert sum('the start of the stage' in str(x.message) for x in w) == 2
    assert [s['checkpoint'] for s in info['skipped_checkpoints']] == ['checkpoint-0000004', 'checkpoint-0000002']
    assert info['resumed_checkpoint'] is None
    saw('fault survived')


def test_part_trained_stage_refuses_other_settings(tmp_path, part_trained):
    "Before: resuming with steps=3 found step 4 >= 3 and wrote a 4-step stage as finished."
    run = tmp_path/'run'; shutil.copytree(part_trained, run)
    for change, needle in ((dict(steps=3), 'steps 6 (now 3)'), (dict(batch_size=4), 'batch_size 8 (now 4)'), (dict(lr=0.1), 'lr 0.001 (now 0.1)')):
        with pytest.raises(RunError) as e: train_level(None, run, **(KW | change))
        for n in ('holds a part-trained stage with other settings', needle, 'continue it with the same settings', 'move'):
            assert n in str(e.value), str(e.value)
    assert not (run/STAGE).exists() and len(checkpoints(run/'checkpoints'/STAGE)) == 2
    saw('clear error')


# ================================================================ caches: the tiny base and the world

BASE = textwrap.dedent("""
    import os, signal, sys, torch
    torch.set_num_threads(1)
    import taxanb.train as T, taxanb.backbone as B
    cache, where = sys.argv[1], sys.argv[2]
    def die(*_): os.kill(os.getpid(), signal.SIGKILL)
    if where == 'pretraining':     # the base's pretraining, after its step 3 of 6 (checkpoints every step)
        log = T.LossLog.__call__
        T.LossLog.__call__ = lambda self, stage, step, *a: (log(self, stage, step, *a), step == 3 and die())
    elif where == 'saving':        # pretrained; while the base is saved into its temporary folder
        sv = T.save_backbone
        T.save_backbone = lambda bb, out: (bb.unet.save_pretrained(os.path.join(out, 'unet')), die())
    cfg = T.TrainConfig(preset='smoke', cache_latents=False)
    data, _, _ = T.load_data(cfg)  # the world from the session cache; the base into `cache`
    T.tiny_base(cfg, data, T.data_key(cfg, data), cache_dir=cache, progress=False)
    sys.exit(3)
""")


def base_of(cache: Path) -> Path:
    cfg = TrainConfig(preset='smoke', cache_latents=False); data, _, _ = load_data(cfg)
    return tiny_base(cfg, data, data_key(cfg, data), cache_dir=cache, progress=False)


def same_base(a: Path, b: Path):
    for f in ('unet/diffusion_pytorch_model.safetensors', 'text_encoder/model.safetensors'):
        A, B = load_file(a/f), load_file(b/f)
        assert A.keys() == B.keys() and all(torch.equal(A[k], B[k]) for k in A), f'{f} differs from the uninterrupted build'


@pytest.fixture(scope='module')
def clean_base(tmp_path_factory, one_thread):
    "The smoke tiny base (and its autoencoder) built without interruption into a cache of its own."
    return base_of(tmp_path_factory.mktemp('clean-cache'))


@pytest.mark.parametrize('where', ['pretraining', 'saving'])
def test_sigkill_during_the_tiny_base_build(tmp_path, clean_base, where):
    assert in_child(BASE, tmp_path, where) == -signal.SIGKILL
    parent = tmp_path/'tiny-base'
    assert not list(parent.glob('*/done.json'))                                    # nothing looks finished
    if where == 'saving': assert list(parent.glob('*.tmp*'))                       # a half-saved base in its temporary folder
    base = base_of(tmp_path)
    same_base(base, clean_base)
    steps = [int(l.split(',')[1]) for l in (base/'loss.csv').read_text().splitlines()[1:]]
    assert steps == list(range(1, 7))                                              # resumed: each step once
    assert sorted(p.name for p in parent.iterdir() if not p.name.endswith('.lock')) == [base.name]   # no .tmp or .work left
    saw('fault survived')


def test_damaged_tiny_base_is_rebuilt_with_a_warning(tmp_path, clean_base):
    "Before: a truncated tiny-base safetensors gave a raw diffusers OSError on every run (the world and oracle caches were rebuilt)."
    cache = tmp_path/'cache'; shutil.copytree(clean_base.parents[1], cache)
    base = cache/'tiny-base'/clean_base.name
    os.truncate(base/'unet'/'diffusion_pytorch_model.safetensors', 1000)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        again = base_of(cache)
    msg = [str(x.message) for x in w if 'is damaged' in str(x.message)]
    assert len(msg) == 1 and f'the tiny base cache {base} is damaged' in msg[0] and 'rebuilding it' in msg[0], msg
    assert again == base
    same_base(again, clean_base)
    saw('fault survived')


def test_damaged_tiny_base_without_a_file_list_is_rebuilt(tmp_path, clean_base):
    "A base cached before done.json listed its files: the safetensors header check still finds the damage."
    cache = tmp_path/'cache'; shutil.copytree(clean_base.parents[1], cache)
    base = cache/'tiny-base'/clean_base.name
    done = json.loads((base/'done.json').read_text()); done.pop('files'); (base/'done.json').write_text(json.dumps(done))
    os.truncate(base/'text_encoder'/'model.safetensors', 5000)
    with pytest.warns(UserWarning, match='text_encoder/model.safetensors'): again = base_of(cache)
    same_base(again, clean_base)
    saw('fault survived')


WORLD = textwrap.dedent("""
    import os, signal, sys
    import taxanb.synth as S
    wj = S.write_json
    S.write_json = lambda p, obj: os.kill(os.getpid(), signal.SIGKILL) if str(p).endswith('world.json') else wj(p, obj)
    S.build_world(S.WorldConfig(seed=3, max_count=20), cache_dir=sys.argv[1])   # images.npy written, world.json not yet
    sys.exit(3)
""")


def test_sigkill_during_the_world_cache_build(tmp_path):
    from taxanb.synth import SynthWarning, WorldConfig, build_world
    assert in_child(WORLD, tmp_path) == -signal.SIGKILL
    cfg = WorldConfig(seed=3, max_count=20)
    with pytest.warns(SynthWarning, match='unreadable or corrupt'): w = build_world(cfg, cache_dir=tmp_path)
    clean = build_world(cfg, cache_dir=tmp_path/'clean')
    assert torch.equal(w.images, clean.images)
    with warnings.catch_warnings():
        warnings.simplefilter('error', SynthWarning)
        assert torch.equal(build_world(cfg, cache_dir=tmp_path).images, clean.images)   # repaired: loads without a warning
    saw('fault survived')
