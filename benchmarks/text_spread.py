"""How distinguishable are taxon names to the tiny stand-in's text encoder?

`python benchmarks/text_spread.py [TINY_BASE_FOLDER]` prints, for the genus and species names of the synthetic
world, the spread of the text encoder's hidden states across taxa (std over taxa at the real-token positions,
divided by the mean magnitude) at each layer, for the pretrained tiny base and for an untrained encoder of the
same architecture. The level modules of TaxaDiffusion read the last layer: when it is near 0, every name looks
the same to them and a level learns slowly or not at all. Default folder: the newest cached `cpu` tiny base.
"""
import sys, glob, os
from pathlib import Path
import torch
from taxanb.core import cache_root
from taxanb.synth import build_world
from taxanb.conditioning import LevelTexts
from taxanb.backbone import load_backbone, build_backbone
import taxanb.train as T

def spread(bb, texts:list, max_length:int=T.TINY_MAX_LENGTH) -> list:
    "Relative spread across `texts` of each layer's hidden states (embeddings first, then each layer)."
    ids = bb.tokenizer(texts, padding='max_length', max_length=max_length, truncation=True, return_tensors='pt')
    with torch.no_grad(): out = bb.text_encoder(ids.input_ids, output_hidden_states=True)
    real = ids.attention_mask.bool().all(0)          # positions that hold a real token in every text
    return [round((h.std(0)[real].mean() / h.abs().mean()).item(), 3) for h in out.hidden_states]

if __name__ == '__main__':
    torch.set_num_threads(1)
    folder = sys.argv[1] if len(sys.argv) > 1 else max(glob.glob(str(cache_root()/'tiny-base'/'tiny-32px-*/')), key=os.path.getmtime)
    world = build_world(); texts = LevelTexts(world.taxonomy)
    encoders = {'pretrained ' + Path(folder).name: load_backbone(folder, kind='tiny'),
                'untrained': build_backbone(T._tiny_configs(T.TrainConfig(preset='cpu')), kind='tiny', seed=0)}
    for name, bb in encoders.items():
        for level in ('genus', 'species'):
            k = texts.level(level)
            print(f"{name:40s} {level:8s} spread per layer (embeddings .. last): {spread(bb, texts.table[k][:16])}")
