"""Does a level learn? The progressive chain with a scalar level gate against a zero-initialised projection.

    python benchmarks/level_gate.py train RUN_DIR --level-gate scalar      # one chain per call (two calls can run side by side)
    python benchmarks/level_gate.py train RUN_DIR --level-gate projection
    python benchmarks/level_gate.py summarise OUT_DIR RUN_DIR_A RUN_DIR_B   # table.md + results.json of the stage curves

The defaults are the settings of runs/experiments/level-gate-projection-20261205 (the `cpu` train preset, lr 1e-3, gate lr
5e-2). Issue 14's open question, whether the levels open at the GPU presets' learning rates, is the same two calls with
the `gpu-synth` reproduction preset's training settings, on a GPU:

    python benchmarks/level_gate.py train RUN_A --level-gate scalar --preset gpu --image-size 64 --batch-size 64 \
        --lr 1e-4 --gate-lr 1e-3 --steps 2000 --threads 8           # and RUN_B with --level-gate projection

Every stage records its own learning curve (oracle accuracy at its level, every taxon of the level drawn, >= 200 images,
EMA weights) in its stage.json; `summarise` gathers them side by side.
"""
import argparse, json, time
from pathlib import Path


def train(a):
    import torch
    torch.set_num_threads(a.threads)
    from taxanb.train import train_all
    t = time.time()
    sizes = {k: v for k, v in dict(image_size=a.image_size, batch_size=a.batch_size).items() if v is not None}   # else the preset's
    stages = train_all(Path(a.run_dir), preset=a.preset, base_text_encoder=a.base_text_encoder, level_gate=a.level_gate, steps=a.steps,
                       lr=a.lr, gate_lr=a.gate_lr, ema_decay=a.ema_decay, single_taxon_ranks=a.single_taxon_ranks, progress=False,
                       evaluate=False, curve_every=a.steps // 2, **sizes)
    for s in stages:
        d = json.loads((s/'stage.json').read_text())
        print(s.name, [(c['step'], c['accuracy'][d['level']]) for c in d['curve']], flush=True)
    print('seconds', round(time.time() - t, 1))


def summarise(a):
    runs = {}
    for r in map(Path, a.run_dirs):
        cfg = json.loads((r/'config.json').read_text())
        stages = []
        for f in sorted(r.glob('stage-*/stage.json')):
            d = json.loads(f.read_text())
            stages.append(dict(level=d['level'], seconds=d['seconds'], curve=[dict(step=c['step'], accuracy=c['accuracy'][d['level']],
                                                                                   images=c['accuracy']['images']) for c in d['curve']]))
        runs[cfg.get('level_gate', 'scalar')] = dict(run_dir=str(r), settings=cfg, stages=stages)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    (out/'results.json').write_text(json.dumps(runs, indent=1))
    names = list(runs)
    steps = [c['step'] for c in runs[names[0]]['stages'][0]['curve']]
    rows = ['| level | chance | ' + ' | '.join(f'{n}, step {s}' for n in names for s in steps) + ' |', '|---' * (2 + len(names) * len(steps)) + '|']
    from taxanb.synth import build_world
    tax = build_world().taxonomy
    for i, st in enumerate(runs[names[0]]['stages']):
        cells = [f"{c['accuracy']:.2f}" for n in names for c in runs[n]['stages'][i]['curve']]
        rows.append(f"| {st['level']} | {1 / tax.n_taxa(st['level']):.3f} | " + ' | '.join(cells) + ' |')
    n_img = sorted({c['images'] for n in names for s in runs[n]['stages'] for c in s['curve']})
    (out/'table.md').write_text('Oracle accuracy of each stage at its own level (every taxon of the level drawn; '
                                f'{n_img[0]}–{n_img[-1]} images per point; EMA weights):\n\n' + '\n'.join(rows) + '\n')
    print((out/'table.md').read_text())


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    t = sub.add_parser('train', help='train one progressive chain with its per-stage learning curves')
    t.add_argument('run_dir', help='a new run folder')
    t.add_argument('--level-gate', default='scalar', choices=['scalar', 'projection'], help='the zero start of every level below the top')
    t.add_argument('--steps', type=int, default=200, help='steps per level (curve points at half and at the end)')
    t.add_argument('--base-text-encoder', default='frozen', choices=['trained', 'frozen'], help="the stand-in's text encoder while it pretrained")
    t.add_argument('--single-taxon-ranks', default='drop', choices=['train', 'drop'], help="'drop': class first (five levels), as the earlier curves")
    t.add_argument('--preset', default='cpu', choices=['cpu', 'gpu'], help="the train preset (taxanb.train.PRESETS): its stand-in and sizes")
    t.add_argument('--lr', type=float, default=1e-3, help='learning rate of every level')
    t.add_argument('--gate-lr', type=float, default=5e-2, help='learning rate of the scalar gates (the projection trains at --lr)')
    t.add_argument('--ema-decay', type=float, default=0.99, help='EMA of the weights (the curve points draw from it)')
    t.add_argument('--image-size', type=int, default=None, help="pixels; default: the preset's")
    t.add_argument('--batch-size', type=int, default=None, help="images per step; default: the preset's")
    t.add_argument('--threads', type=int, default=1, help='torch threads')
    s = sub.add_parser('summarise', help='table.md and results.json of finished chains')
    s.add_argument('out', help='folder for table.md and results.json')
    s.add_argument('run_dirs', nargs='+', help='the chains to compare')
    a = p.parse_args()
    train(a) if a.cmd == 'train' else summarise(a)
