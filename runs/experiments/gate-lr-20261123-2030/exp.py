"Does a separate learning rate for the level gate let a new level reach the UNet? Progressive order stage from one class stage."
import json, sys, time, torch
from taxanb.train import train_level, load_stage, sample, taxa_to_draw, oracle_for, TrainConfig
from taxanb.metrics import oracle_accuracy
from taxanb.synth import build_world
torch.manual_seed(0)
S = dict(preset='cpu', base_steps=200, batch_size=16, progress=False)
root = sys.argv[1]; steps0, steps1 = int(sys.argv[2]), int(sys.argv[3])
t = time.time()
s0 = train_level('class', f'{root}/run-class', steps=steps0, evaluate=False, **S)
print('stage0', round(time.time() - t), flush=True)
world = build_world(); oracle = oracle_for(world, TrainConfig(**{k: v for k, v in S.items() if k != 'progress'}))
out = {}
for gl in (None, 1e-2):
    t = time.time()
    s1 = train_level('order', f'{root}/run-order-{gl}', init_from=s0, steps=steps1, gate_lr=gl, evaluate=False, **S)
    model, bb, info = load_stage(s1)
    gate = float(model.conditioner.level_modules[1].gate)
    taxa, rows = taxa_to_draw(model.texts.tax, 'order')            # the 4 orders
    labels = rows.repeat_interleave(8, 0)
    imgs = sample(model, bb, labels, 1, steps=25, seed=0)
    # same noise, the order of the other class's sibling swapped in: how much does the level-1 text move pixels?
    swapped = sample(model, bb, rows[[1, 0, 3, 2]].repeat_interleave(8, 0), 1, steps=25, seed=0)
    acc = oracle_accuracy(oracle, imgs, labels, n_boot=200, seed=0)
    out[str(gl)] = dict(gate=round(gate, 4), pixel_change_when_order_swapped=round(float((imgs - swapped).abs().mean()), 4),
                        image_std=round(float(imgs.std()), 3), order_acc=acc['order'], class_acc=acc['class'], seconds=round(time.time() - t))
    print(gl, out[str(gl)], flush=True)
json.dump(out, open(f'{root}/result.json', 'w'), indent=2)
