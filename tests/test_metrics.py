"""Metric correctness (FID/KID against direct computations), offline loading behaviour, bad input, and the harness."""
import json, math, os, time
os.environ["HF_HUB_OFFLINE"] = "1"
from pathlib import Path
import numpy as np, pytest, scipy.linalg, torch
import torch.nn as nn

from taxanb.metrics import (MetricError, WeightsUnavailable, FeatureSource, augmented_accuracy, balanced_reference, bioclip_model,
                            bootstrap_ci, as_image_batch, class_matched, classifier_accuracy, evaluate, fid_from_features,
                            inception_features, kid_from_features, lpips_distance, lpips_model, lpips_pairs, module_features,
                            oracle_accuracy, oracle_features, resolve_weights, taxon_prompt, topk_accuracy, world_generator)
from taxanb.synth import WorldConfig, build_world, train_oracle, load_oracle

torch.set_num_threads(min(2, torch.get_num_threads()))   # at most 2; fewer when OMP_NUM_THREADS says so (the test command: 1)


def frechet_numpy(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))


@pytest.fixture(scope="module")
def feats():
    rng = np.random.default_rng(1)
    return rng.normal(size=(800, 32)), rng.normal(size=(700, 32)) @ rng.normal(size=(32, 32)) * .2 + .3


def test_fid_self_is_zero(feats):
    A, _ = feats
    assert abs(fid_from_features(A, A)) < 1e-7


def test_fid_matches_scipy(feats):
    A, B = feats
    ours, ref = fid_from_features(A, B), frechet_numpy(A, B)
    assert abs(ours - ref) / ref < 1e-6


def test_fid_grows_with_noise(feats):
    A, _ = feats
    rng = np.random.default_rng(2)
    eps = rng.normal(size=A.shape)
    vals = [fid_from_features(A, A + s * eps) for s in (0., .05, .2, .5, 1., 2.)]
    assert all(np.diff(vals) > 0), vals


def test_fid_torch_and_numpy_inputs_agree(feats):
    A, B = feats
    assert fid_from_features(torch.tensor(A), torch.tensor(B)) == fid_from_features(A, B)


def test_kid_unbiased_and_grows():
    rng = np.random.default_rng(3)
    vals = []
    for rep in range(8):   # independent sample pairs of one distribution: mean 0 within its standard error
        X, Y = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
        vals.append(kid_from_features(X, Y, subsets=20, subset_size=200, seed=rep)['mean'])
    assert abs(np.mean(vals)) < 3 * np.std(vals, ddof=1) / math.sqrt(len(vals)), vals
    X, Y = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    shifted = [kid_from_features(X, Y + s, subsets=20, subset_size=200)['mean'] for s in (.2, .5, 1.)]
    assert np.mean(vals) < shifted[0] < shifted[1] < shifted[2]


def test_kid_deterministic_and_capped():
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(50, 8)), rng.normal(size=(30, 8))
    a, b = kid_from_features(X, Y, subsets=5, seed=7), kid_from_features(X, Y, subsets=5, seed=7)
    assert a == b and a['subset_size'] == 30


@pytest.mark.parametrize("real,fake,msg", [
    (np.zeros((1, 4)), np.zeros((5, 4)), "at least 2"),
    (np.zeros((5, 4)), np.zeros((5, 3)), "same D"),
    (np.full((5, 4), np.nan), np.zeros((5, 4)), "NaN"),
])
def test_fid_bad_features(real, fake, msg):
    with pytest.raises(MetricError, match=msg): fid_from_features(real, fake)


def test_class_matched(feats):
    A, B = feats
    ya, yb = np.arange(len(A)) % 4, np.arange(len(B)) % 4
    cm = class_matched('fid', A, ya, A, ya)
    assert abs(cm['value']) < 1e-6 and cm['n_classes'] == 4 and cm['n_real_per_class']['min'] == 200
    cm = class_matched('fid', A, ya, B, yb)
    assert cm['value'] == pytest.approx(np.mean([fid_from_features(A[ya == c], B[yb == c]) for c in range(4)]))
    # a class with one generated image is skipped and reported
    yb2 = yb.copy(); yb2[:] = 0; yb2[0] = 3
    assert class_matched('fid', A, ya, B, yb2)['skipped'] == [3]
    with pytest.raises(MetricError, match="'fid' or 'kid'"): class_matched('is', A, ya, B, yb)


def test_balanced_reference():
    y = np.array([0, 0, 0, 0, 1, 2])
    idx = balanced_reference(y, [0, 1], n=3, seed=0)
    assert sorted(y[idx].tolist()) == [0, 0, 0, 1] and len(set(idx)) == 4
    assert (balanced_reference(y, [0, 1], 3, seed=0) == idx).all()


def test_as_image_batch():
    assert as_image_batch(torch.zeros(2, 3, 4, 4, dtype=torch.uint8)).min() == -1
    with pytest.raises(MetricError, match=r"\[-1,1\]"): as_image_batch(torch.full((1, 3, 4, 4), 5.))
    with pytest.raises(MetricError, match="B,3,H,W"): as_image_batch(torch.zeros(3, 4, 4))
    with pytest.raises(MetricError, match="tensor"): as_image_batch([1, 2])


def test_weights_fail_fast_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for fn, name in [(lambda: resolve_weights('inception'), 'weights-inception-2015-12-05-6726825d.pth'),
                     (inception_features, 'weights-inception-2015-12-05-6726825d.pth'),
                     (lpips_model, 'alexnet-owt-7be5be79.pth'),
                     (bioclip_model, 'imageomics/bioclip')]:
        t0 = time.perf_counter()
        with pytest.raises(WeightsUnavailable, match=name.replace('.', r'\.')): fn()
        assert time.perf_counter() - t0 < 1.0
    with pytest.raises(MetricError, match="unknown weights"): resolve_weights('vgg')


def test_weights_found_locally(monkeypatch, tmp_path):
    monkeypatch.setenv("TAXANB_WEIGHTS", str(tmp_path))
    (tmp_path / 'alexnet-owt-7be5be79.pth').write_bytes(b'x')
    assert resolve_weights('alexnet') == tmp_path / 'alexnet-owt-7be5be79.pth'
    assert resolve_weights('alexnet', path=tmp_path) == tmp_path / 'alexnet-owt-7be5be79.pth'


def test_lpips_local_alexnet_file(monkeypatch, tmp_path):
    "The real-weights path: a torchvision AlexNet state dict on disk ends up in the LPIPS backbone."
    import torchvision
    torch.manual_seed(5); tv = torchvision.models.alexnet()
    torch.save(tv.state_dict(), tmp_path / 'alexnet-owt-7be5be79.pth')
    m = lpips_model(weights=tmp_path)
    assert torch.equal(getattr(m.net.slice1, '0').weight, tv.features[0].weight) and torch.equal(getattr(m.net.slice5, '10').weight, tv.features[10].weight)


def test_lpips_random_backbone():
    m = lpips_model(random_backbone=True)
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    assert torch.allclose(lpips_distance(m, x, x), torch.zeros(6), atol=1e-6)
    assert (lpips_distance(m, x, x.roll(1, 0)) > 0).all()
    r = lpips_pairs(m, x, [0, 0, 0, 1, 1, 1], x, [0, 0, 0, 1, 1, 1], seed=0)
    assert r['n_pairs'] == 6 and r == lpips_pairs(m, x, [0, 0, 0, 1, 1, 1], x, [0, 0, 0, 1, 1, 1], seed=0)
    with pytest.raises(MetricError, match="no real image"): lpips_pairs(m, x, [2] * 6, x, [0] * 6)
    with pytest.raises(MetricError, match="equal shapes"): lpips_distance(m, x, x[:2])


def test_inception_random_same_path():
    src = inception_features(random_init=True, batch_size=4)
    assert not src.standard and 'RANDOM' in src.name
    f = src(torch.rand(5, 3, 32, 32) * 2 - 1)
    assert f.shape == (5, 2048) and f.dtype == torch.float64 and torch.isfinite(f).all()


def test_bioclip_random_score_range():
    from taxanb.taxonomy import Taxonomy
    import pandas as pd
    tax = Taxonomy.from_table(pd.DataFrame(dict(genus=['Salmo', 'Esox'], species=['Salmo trutta', 'Esox lucius'])))
    assert taxon_prompt(tax, 'Esox lucius') == 'a photo of Esox Esox lucius.'
    clip = bioclip_model(random_init=True, batch_size=2)
    s = clip.score(torch.rand(3, 3, 32, 32) * 2 - 1, [taxon_prompt(tax, 'Salmo'), taxon_prompt(tax, 'Esox lucius'), 'a photo of Esox.'])
    assert s.shape == (3,) and ((s >= -100) & (s <= 100)).all()
    with pytest.raises(MetricError, match="one text per image"): clip.score(torch.zeros(2, 3, 8, 8), ['a'])
    with pytest.raises(MetricError, match="hf-hub"): bioclip_model('imageomics/bioclip')


def test_topk_and_classifier_accuracy():
    logits = torch.tensor([[.1, .9, 0], [.8, .1, .1], [.2, .3, .5]])
    assert topk_accuracy(logits, [1, 1, 0], ks=(1, 2)) == {'top1': 1 / 3, 'top2': 2 / 3}
    clf = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 7))
    x = torch.rand(10, 3, 4, 4) * 2 - 1
    y = clf(x).argmax(1)
    a = classifier_accuracy(clf, x, y)
    assert a['top1'] == 1.0 and a['top5'] == 1.0 and a['n'] == 10
    with pytest.raises(MetricError, match="must match"): topk_accuracy(logits, [1])


def test_bootstrap_ci():
    m, lo, hi = bootstrap_ci(np.r_[np.ones(80), np.zeros(20)], n_boot=2000)
    assert m == .8 and lo < .8 < hi and hi - lo == pytest.approx(2 * 1.96 * math.sqrt(.8 * .2 / 100), rel=.2)
    assert bootstrap_ci([1, 0, 1], seed=3) == bootstrap_ci([1, 0, 1], seed=3)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    w = build_world(WorldConfig(branching=(1, 1, 2, 2, 1, 2, 2), max_count=30), cache_dir=tmp_path_factory.mktemp('w'))
    return w, train_oracle(w, steps=60, batch_size=64, progress=False, eval_per_species=0)


def test_oracle_accuracy_small(small):
    w, o = small
    x, y = w.sample(10, seed=99)
    acc = oracle_accuracy(o, x, y, n_boot=100)
    assert set(acc) == set(o.levels) and all(0 <= a['lo'] <= a['acc'] <= a['hi'] <= 1 for a in acc.values())
    y2 = y.clone(); y2[:, 4:] = -1                      # ranks below family not requested: skipped
    assert set(oracle_accuracy(o, x, y2, n_boot=10)) == set(o.levels[:4])
    with pytest.raises(MetricError, match="lineage_labels"): oracle_accuracy(o, x, y[:, :3])


def test_evaluate_harness(small, tmp_path):
    w, o = small
    noise = lambda taxon, level, n, seed: torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    kw = dict(taxonomy=w.taxonomy, levels=['class', 'species'], n_per_taxon=4, oracle=o, lpips=lpips_model(random_backbone=True),
              clip='auto', kid_subsets=5, n_boot=50, progress=False)
    rep = evaluate(world_generator(w), w, out_dir=tmp_path, **kw)
    assert list(rep.table.index) == ['class', 'species']
    for col in ('BioCLIP score', 'FID [Inception]'):
        assert rep.table[col].str.startswith('not available').all()   # weights absent offline: labelled, no crash
    assert 'synth oracle' in rep.settings['feature_sources']['oracle']
    js = json.loads((tmp_path / 'metrics.json').read_text())
    assert js['results']['species']['n_generated'] == 4 * w.taxonomy.n_taxa('species')
    assert '| level |' in (tmp_path / 'metrics.md').read_text()
    assert evaluate(world_generator(w), w, **kw).results == rep.results       # deterministic
    rn = evaluate(noise, w, **kw)
    for lv in ('class', 'species'):
        assert rep.results[lv]['FID [oracle]'] < rn.results[lv]['FID [oracle]']
        assert rep.results[lv]['oracle accuracy'][lv]['acc'] > rn.results[lv]['oracle accuracy'][lv]['acc']
    bad = lambda taxon, level, n, seed: torch.rand(n, 3, 32, 32) * 10
    with pytest.raises(MetricError, match=r"\[-1,1\]"): evaluate(bad, w, **kw)
    with pytest.raises(MetricError, match="n_per_taxon"): evaluate(noise, w, **(kw | dict(n_per_taxon=1)))


def test_evaluate_metric_failure_is_a_cell(small):
    "A feature source that breaks shows its reason in the table instead of crashing the evaluation."
    w, o = small
    def broken(x): raise RuntimeError("feature net exploded")
    rep = evaluate(world_generator(w), w, w.taxonomy, levels=['class'], n_per_taxon=3, features={'bad': FeatureSource(broken, 'bad')},
                   lpips=None, clip=None, oracle=o, n_boot=10, progress=False)
    assert rep.table.loc['class', 'FID [bad]'].startswith('not available: feature net exploded')
    assert rep.table.loc['class', 'oracle accuracy'][0].isdigit()


def test_augmented_accuracy(small):
    w, _ = small
    gen_x, gen_y = w.sample(8, seed=1)
    test_x, test_y = w.sample(5, seed=2)
    make = lambda: nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    r = augmented_accuracy(make, (gen_x, gen_y[:, 2]), (w.images, w.labels[:, 2]), (test_x, test_y[:, 2]), k=3, epochs=3, seed=0)
    assert r['n_real_train'] == 6 and r['n_generated'] == len(gen_x) and 0 <= r['top1'] <= 1
    assert r == augmented_accuracy(make, (gen_x, gen_y[:, 2]), (w.images, w.labels[:, 2]), (test_x, test_y[:, 2]), k=3, epochs=3, seed=0)


def test_module_features():
    src = module_features(nn.Flatten(), preprocess=lambda x: x[:, :1], name='first channel', batch_size=3)
    f = src(torch.zeros(7, 3, 2, 2))
    assert f.shape == (7, 4) and src.name == 'first channel'


def test_feature_extractors_follow_the_one_device_setting(monkeypatch):
    "Inception, LPIPS, BioCLIP and any module's features run where `core.pick_device` says: $TAXANB_DEVICE, else the accelerator."
    from taxanb.core import RunError, pick_device
    monkeypatch.delenv('TAXANB_DEVICE', raising=False)
    assert module_features(nn.Flatten()).device == pick_device() == inception_features(random_init=True).device
    monkeypatch.setenv('TAXANB_DEVICE', 'cpu')
    assert module_features(nn.Flatten()).device == torch.device('cpu')
    assert next(lpips_model(random_backbone=True).parameters()).device == torch.device('cpu')
    clip = bioclip_model(random_init=True, batch_size=2)
    assert clip.device == torch.device('cpu') and clip.score(torch.zeros(2, 3, 16, 16), ['a fish', 'a bird']).device == torch.device('cpu')
    monkeypatch.setenv('TAXANB_DEVICE', 'gpu0')
    with pytest.raises(RunError, match="TAXANB_DEVICE='gpu0' is not a device"): module_features(nn.Flatten())
    assert module_features(nn.Flatten(), device='cpu').device == torch.device('cpu')   # an explicit device wins


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_default_oracle_real_vs_noise():
    """The oracle on the default world (trained once, ~1.5-8 min on 2 CPU cores, or reused from $TAXANB_ORACLE_CACHE):
    >= 97% per rank on fresh real images, near chance on noise, through `oracle_accuracy`."""
    world = build_world()
    oracle = load_oracle(world, cache_dir=os.environ.get('TAXANB_ORACLE_CACHE'), progress=False)
    x, y = world.sample(30, seed=2024)
    acc = oracle_accuracy(oracle, x, y, n_boot=200)
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    acc_n = oracle_accuracy(oracle, noise, y, n_boot=200)
    for l, n in zip(oracle.levels, oracle.n_taxa):
        assert acc[l]['acc'] >= 0.97, (l, acc[l])
        if n > 1: assert abs(acc_n[l]['acc'] - 1 / n) <= 0.06, (l, acc_n[l])


FLAT_MEMORY = r'''
import resource, sys, json, numpy as np, pandas as pd, torch
from taxanb.metrics import FeatureSource, evaluate
from taxanb.taxonomy import Taxonomy
n, side = int(sys.argv[1]), 64
table = pd.DataFrame({'genus': [f'G{i % 4}' for i in range(n)], 'species': [f'G{i % 4} s{i % 16}' for i in range(n)]})
tax = Taxonomy.from_table(table, ranks=('genus', 'species'))
class Lazy(torch.utils.data.Dataset):
    "n real images made on demand (like files on disk): labels up front, pixels only when read."
    def __init__(self): self.labels, self.reads = np.asarray(tax.labels), 0
    def __len__(self): return n
    def __getitem__(self, i):
        self.reads += 1
        return {'image': torch.rand(3, side, side, generator=torch.Generator().manual_seed(int(i))) * 2 - 1, 'labels': torch.as_tensor(self.labels[i])}
real = Lazy()
noise = lambda taxon, level, k, seed: torch.rand(k, 3, side, side, generator=torch.Generator().manual_seed(seed)) * 2 - 1
pool = FeatureSource(lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1), 'mean colour 4x4')
rep = evaluate(noise, real, tax, n_per_taxon=8, features={'pool': pool}, lpips=None, clip=None, kid_subsets=5, n_boot=10, progress=False)
print(json.dumps(dict(peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, reads=real.reads,
                      n_real=sum(r['n_real'] for r in rep.results.values()), fid=rep.results['species']['FID [pool]'])))
'''


def test_evaluation_memory_stays_flat_as_the_reference_grows(tmp_path):
    "10x more real images (4,000 -> 40,000 at 64 px; 0.2 -> 2 GB if held as float32): the same reads, peak RSS within 64 MiB."
    script = tmp_path / 'flat.py'; script.write_text(FLAT_MEMORY)
    import subprocess, sys
    run = lambda n: json.loads(subprocess.run([sys.executable, str(script), str(n)], capture_output=True, text=True, check=True,
                                              env=os.environ | {'OMP_NUM_THREADS': '1'}).stdout.strip().splitlines()[-1])
    small, big = run(4_000), run(40_000)
    assert small['reads'] == small['n_real'] == big['reads'] == big['n_real'] == (4 + 16) * 8   # only the balanced reference is read
    assert big['peak_mib'] - small['peak_mib'] < 64, (small, big)
