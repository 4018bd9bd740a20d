#!/usr/bin/env python
"""Kingdom first (the paper) against class first (the earlier default), one progressive chain each, judged by the oracle.

    python benchmarks/kingdom_first.py --steps 100 --cache-dir DIR --out runs/experiments/kingdom-first-<time>

Both chains use the same settings (training preset `cpu` with the `cpu-full` stand-in, base 5,000 steps, `--steps` per
level at batch 32, lr 1e-3, gate lr 5e-2, seed 0) and differ only in `single_taxon_ranks`: 'train' makes every rank from
the top a level (kingdom, phylum, class, ..., species: stage 0 trains LoRA with the one-taxon kingdom text), 'drop' leaves
out the synthetic world's two one-taxon ranks (stage 0 trains LoRA with class). The final species stage of each chain
draws `--per-species` images of every species (the same noise in both chains, DDIM `--sample-steps`, scale 3) with
classifier-free guidance and with TaxaGuide from the first level (kingdom, or class for 'drop'); the oracle scores the
requested lineage at every rank (95% bootstrap intervals) and the paired difference 'train' - 'drop' per rank. It writes
`results.json` and `table.md` into `--out` (a new folder); the trained chains go to `--work` (default: a temporary folder).
"""
import argparse, json, sys, tempfile, time
from pathlib import Path
import numpy as np, torch

RANKS = ('class', 'order', 'family', 'genus', 'species')

def main(a):
    from taxanb.core import write_json, md_table
    from taxanb.train import TrainConfig, load_data, train_all, oracle_for, load_stage
    from taxanb.experiments import lineage_rows
    from taxanb.guidance import guided_draw
    from taxanb.metrics import oracle_accuracy, bootstrap_ci
    out = Path(a.out); out.mkdir(parents=True, exist_ok=False)
    work = Path(a.work or tempfile.mkdtemp(prefix='kingdom-first-'))
    settings = dict(preset='cpu', base_steps=5000, steps=a.steps, lr=1e-3, gate_lr=5e-2, seed=0)
    cfg = TrainConfig(**settings); _, tax, world = load_data(cfg, a.cache_dir)
    oracle = oracle_for(world, cfg, a.cache_dir)
    rows = lineage_rows(tax, tax.taxa('species'), a.per_species)
    res, correct = {}, {}
    for rule in ('train', 'drop'):
        t0 = time.time()
        stages = train_all(work/rule, progress=False, cache_dir=a.cache_dir, evaluate=False, single_taxon_ranks=rule, **settings)
        infos = [json.loads((s/'stage.json').read_text()) for s in stages]
        model, _, _ = load_stage(stages[-1], a.cache_dir)
        gates = [round(float(m.gate), 4) if m.gate is not None else None for m in model.conditioner.level_modules]
        r = dict(levels=infos[-1]['levels'], train_seconds=round(sum(i['seconds'] for i in infos), 1), wall_seconds=round(time.time() - t0, 1),
                 steps=sum(i['steps'] for i in infos), final_loss=[round(i['final_loss'], 4) for i in infos], gates=gates, accuracy={})
        for guidance in ('cfg', 'taxaguide'):
            t1 = time.time()
            imgs = guided_draw(stages[-1], rows, 'species', guidance, 3.0, a.sample_steps, seed=0, cache_dir=a.cache_dir, precision='auto')
            acc = oracle_accuracy(oracle, imgs, rows, n_boot=1000, seed=0)
            r['accuracy'][guidance] = {k: {kk: round(v, 4) if isinstance(v, float) else v for kk, v in acc[k].items()} for k in RANKS}
            r[f'{guidance}_seconds'] = round(time.time() - t1, 1)
            pred = [p.argmax(1).numpy() for p in oracle.predict(imgs)]
            correct[(rule, guidance)] = {k: (pred[tax.level_index(k)] == rows[:, tax.level_index(k)].numpy()).astype(float) for k in RANKS}
        res[rule] = r
        print(rule, json.dumps(r), flush=True)
    paired = {g: {k: dict(zip(('diff', 'lo', 'hi'), (round(x, 4) for x in bootstrap_ci(correct[('train', g)][k] - correct[('drop', g)][k], 1000, seed=0))))
                  for k in RANKS} for g in ('cfg', 'taxaguide')}
    n = len(rows)
    fmt = lambda d: f"{d['acc']:.3f} [{d['lo']:.3f}, {d['hi']:.3f}]"
    table = [dict(chain=f"{rule} ({res[rule]['levels'][0]} first, {len(res[rule]['levels'])} stages)", guidance=g,
                  **{k: fmt(res[rule]['accuracy'][g][k]) for k in RANKS}) for rule in res for g in ('cfg', 'taxaguide')]
    table += [dict(chain="train − drop (paired)", guidance=g, **{k: f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]" for k, d in paired[g].items()})
              for g in ('cfg', 'taxaguide')]
    table.append(dict(chain='chance', guidance='', **{k: f"{1 / tax.n_taxa(k):.3f}" for k in RANKS}))
    cost = [dict(chain=rule, stages=len(r['levels']), steps=r['steps'], train_s=r['train_seconds'], wall_s=r['wall_seconds'],
                 gates=', '.join(f"{lv} {g}" for lv, g in zip(r['levels'], r['gates']))) for rule, r in res.items()]
    cmd = 'python ' + ' '.join(sys.argv)
    md = (f"# Kingdom first vs class first\n\nCommand: `{cmd}`\n\nSettings: {settings}; {a.per_species} images per species "
          f"({n} per row), DDIM {a.sample_steps} steps, guidance scale 3, the same noise in both chains. Oracle accuracy of the requested "
          f"taxon at each rank [95% bootstrap interval]; paired: the same image slot in both chains.\n\n" + md_table(table)
          + "\n\nCost and the level gates of the final stage:\n\n" + md_table(cost) + "\n")
    (out/'table.md').write_text(md)
    write_json(out/'results.json', dict(command=cmd, settings=settings, per_species=a.per_species, sample_steps=a.sample_steps, images=n,
                                        chains=res, paired_train_minus_drop=paired, work=str(work)))
    print(md)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=100, help='steps per level (both chains)')
    p.add_argument('--per-species', type=int, default=2, help='images per species for the oracle')
    p.add_argument('--sample-steps', type=int, default=20, help='DDIM steps')
    p.add_argument('--cache-dir', default=None, help='taxanb cache (world, oracle, the cpu-full tiny base); default $TAXANB_CACHE')
    p.add_argument('--work', default=None, help='folder for the two trained chains (default: a temporary one)')
    p.add_argument('--out', required=True, help='a new folder for results.json and table.md')
    torch.set_num_threads(1)
    main(p.parse_args())
