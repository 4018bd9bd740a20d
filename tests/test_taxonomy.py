"""taxanb.taxonomy: bad input, edge cases, JSON round trip, row-order independence, the real FishNet table."""
import json, warnings
import numpy as np
import pandas as pd
import pytest

from taxanb.taxonomy import (RANKS, Taxon, Taxonomy, TaxonomyError, TaxonomyWarning, check_ranks, normalize_name,
                             rank_columns)

FISH = [
    ('Actinopterygii', 'Perciformes', 'Pomacentridae', 'Amphiprion', 'Amphiprion ocellaris'),
    ('Actinopterygii', 'Perciformes', 'Pomacentridae', 'Amphiprion', 'Amphiprion ocellaris'),
    ('Actinopterygii', 'Perciformes', 'Pomacentridae', 'Amphiprion', 'Amphiprion percula'),
    ('Actinopterygii', 'Perciformes', 'Pomacentridae', 'Dascyllus', 'Dascyllus aruanus'),
    ('Actinopterygii', 'Perciformes', 'Serranidae', 'Epinephelus', 'Epinephelus lanceolatus'),
    ('Actinopterygii', 'Tetraodontiformes', 'Tetraodontidae', 'Arothron', 'Arothron hispidus'),
    ('Elasmobranchii', 'Carcharhiniformes', 'Carcharhinidae', 'Carcharhinus', 'Carcharhinus leucas'),
    ('Elasmobranchii', 'Orectolobiformes', 'Rhincodontidae', 'Rhincodon', 'Rhincodon typus'),
]
COLS = ['Class', 'Order', 'Family', 'Genus', 'species']


@pytest.fixture
def fish():
    return pd.DataFrame(FISH, columns=COLS)


def build(df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter('error', TaxonomyWarning)   # tests that expect a warning say so
        return Taxonomy.from_table(df, **kw)


# ---------------------------------------------------------------- malformed tables and ranks

@pytest.mark.parametrize('bad', [None, [('A', 'B')], {'genus': ['A']}, np.zeros((2, 2)), 'table.csv'])
def test_not_a_dataframe(bad):
    with pytest.raises(TaxonomyError, match='expected a pandas DataFrame'):
        Taxonomy.from_table(bad)


def test_empty_table(fish):
    with pytest.raises(TaxonomyError, match=r'empty \(0 rows\)'):
        Taxonomy.from_table(fish.iloc[:0])


def test_empty_after_dropping():
    df = pd.DataFrame({'genus': ['A', None], 'species': [None, 'B b']})
    with pytest.raises(TaxonomyError, match="empty after dropping.*missing='fill'"):
        Taxonomy.from_table(df, missing='drop')


def test_no_rank_columns():
    with pytest.raises(TaxonomyError, match=r"no rank columns found.*'a', 'b'.*columns="):
        Taxonomy.from_table(pd.DataFrame({'a': [1], 'b': [2]}))


def test_missing_column_names_it_and_lists_present(fish):
    with pytest.raises(TaxonomyError) as e:
        Taxonomy.from_table(fish, ranks=RANKS)
    msg = str(e.value)
    assert "no column for rank 'kingdom'" in msg and "'Class'" in msg and "'species'" in msg and 'columns=' in msg


def test_columns_override(fish):
    df = fish.rename(columns={'Genus': 'Gattung'})
    with pytest.raises(TaxonomyError, match="'order' is missing|no column for rank 'genus'"):
        Taxonomy.from_table(df, ranks=['genus', 'species'])
    tax = build(df, columns={'genus': 'Gattung'})
    assert tax.ranks == ('class', 'order', 'family', 'genus', 'species')
    with pytest.raises(TaxonomyError, match="column 'Genus', which the table lacks"):
        Taxonomy.from_table(df, columns={'genus': 'Genus'})
    with pytest.raises(TaxonomyError, match="unknown rank 'tribe'"):
        Taxonomy.from_table(df, columns={'tribe': 'Gattung'})


def test_ambiguous_and_duplicate_columns():
    with pytest.raises(TaxonomyError, match='all match rank'):
        Taxonomy.from_table(pd.DataFrame({'Genus': ['A'], 'genus': ['A']}))
    df = pd.DataFrame([['A', 'B']], columns=['genus', 'genus'])
    with pytest.raises(TaxonomyError, match="2 columns named 'genus'"):
        Taxonomy.from_table(df)


def test_unhashable_values():
    with pytest.raises(TaxonomyError, match="column 'genus'.*not names"):
        Taxonomy.from_table(pd.DataFrame({'genus': [['A'], ['B']]}))


def test_case_insensitive_columns(fish):
    tax = build(fish.rename(columns=str.upper))
    assert tax.ranks == ('class', 'order', 'family', 'genus', 'species')
    assert tax.report['columns']['species'] == 'SPECIES'


@pytest.mark.parametrize('ranks,missing_rank', [(['class', 'family'], 'order'), (['kingdom', 'class'], 'phylum'),
                                                (['order', 'species'], 'family')])
def test_non_contiguous_ranks(ranks, missing_rank):
    with pytest.raises(TaxonomyError, match=f"'{missing_rank}'.*missing"):
        check_ranks(ranks)


def test_non_contiguous_inferred_from_columns(fish):
    with pytest.raises(TaxonomyError, match="rank 'order' is missing"):
        Taxonomy.from_table(fish.drop(columns='Order'))


def test_bad_ranks_and_policies(fish):
    with pytest.raises(TaxonomyError, match='valid ranks are kingdom, phylum'):
        Taxonomy.from_table(fish, ranks=['subspecies'])
    with pytest.raises(TaxonomyError, match='more than once'):
        check_ranks(['genus', 'GENUS'])
    with pytest.raises(TaxonomyError, match='no ranks'):
        check_ranks([])
    with pytest.raises(TaxonomyError, match="'reject', 'fill', 'drop'"):
        Taxonomy.from_table(fish, missing='ignore')
    with pytest.raises(TaxonomyError, match="'split', 'error'"):
        Taxonomy.from_table(fish, homonyms='merge')


def test_subsets_of_ranks(fish):
    assert check_ranks(['species', 'genus']) == ('genus', 'species')
    sp = build(fish[['species']])
    assert sp.ranks == ('species',) and sp.n_taxa(0) == 7 and repr(sp) == 'Taxonomy(species: 7 species; 8 rows)'
    assert sp.prompt('Rhincodon typus') == ['species: Rhincodon typus'] and sp.parent('Rhincodon typus') is None
    assert build(fish, ranks=['family', 'genus']).ranks == ('family', 'genus')
    all7 = pd.DataFrame([('Animalia', 'Chordata', 'Mammalia', 'Carnivora', 'Felidae', 'Panthera', 'Panthera leo')], columns=list(RANKS))
    assert build(all7).ranks == RANKS


# ---------------------------------------------------------------- levels

def test_levels_by_name_and_index(fish):
    tax = build(fish)
    assert [tax.level_index(x) for x in ['class', 'SPECIES', 0, -1, -5, np.int64(2)]] == [0, 4, 0, 4, 0, 2]
    assert tax.level_name(-2) == 'genus' and tax.n_levels == 5
    for bad in [5, -6]:
        with pytest.raises(TaxonomyError, match='out of range'):
            tax.level_index(bad)
    with pytest.raises(TaxonomyError, match='valid levels are class, order, family, genus, species'):
        tax.level_index('subspecies')
    with pytest.raises(TaxonomyError, match="no 'kingdom' level"):
        tax.n_taxa('kingdom')
    with pytest.raises(TaxonomyError, match='valid levels'):
        tax.taxa(1.5)
    with pytest.raises(TaxonomyError, match='valid levels'):
        tax.counts(True)


# ---------------------------------------------------------------- missing values

def with_gaps(fish):
    df = fish.copy()
    df.loc[1, 'species'] = np.nan
    df.loc[3, 'species'] = '   '
    df.loc[5, 'Genus'] = ''                        # lower rank set, higher blank
    df.loc[6, 'Class'] = None
    return df


def test_missing_reject(fish):
    with pytest.raises(TaxonomyError) as e:
        Taxonomy.from_table(with_gaps(fish))
    msg = str(e.value)
    assert '4 of 8 rows' in msg and '2 rows have no species (row positions 1, 3)' in msg
    assert '1 row has no genus (row position 5)' in msg and 'no class (row position 6)' in msg
    assert "missing='fill'" in msg and "missing='drop'" in msg


def test_missing_reject_shows_at_most_5_rows():
    df = pd.DataFrame({'genus': ['A'] * 9, 'species': [None] * 8 + ['A b']})
    with pytest.raises(TaxonomyError, match=r'8 rows have no species \(row positions 0, 1, 2, 3, 4, \.\.\.\)'):
        Taxonomy.from_table(df)


def test_missing_drop(fish):
    tax = build(with_gaps(fish), missing='drop')
    assert tax.rows.tolist() == [0, 2, 4, 7]
    assert tax.report['n_rows'] == 8 and tax.report['n_kept'] == 4 and tax.report['n_dropped'] == 4
    assert tax.report['missing'] == {'class': 1, 'order': 0, 'family': 0, 'genus': 1, 'species': 2}
    assert tax.report['n_gaps'] == 2                   # rows 5 and 6: a blank above a named rank
    assert tax.labels.shape == (4, 5) and tax.counts('species').sum() == 4


def test_missing_fill(fish):
    tax = build(with_gaps(fish), missing='fill')
    assert tax.report['n_filled'] == 4 and len(tax.labels) == 8 and tax.report['homonyms'] == []
    unk = [t for t in tax.taxa('species') if t.name == 'unknown']
    assert sorted(t.lineage[-2] for t in unk) == ['Amphiprion', 'Dascyllus']
    assert tax.taxon(('Tetraodontidae', 'unknown')).rank == 'genus'          # unknown genus: a node under its family
    assert tax.taxon(('unknown', 'Carcharhiniformes')).lineage == ('unknown', 'Carcharhiniformes')
    with pytest.raises(TaxonomyError, match='ambiguous'):
        tax.taxon('unknown', level='species')
    # encoding the same table reproduces the labels (blanks fill the same way)
    assert (tax.encode(with_gaps(fish)) == tax.labels).all()


def test_unknown_under_different_parents_is_not_a_homonym():
    df = pd.DataFrame({'family': ['F', 'G', 'G'], 'genus': [None, None, 'X']})
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        tax = Taxonomy.from_table(df, missing='fill', homonyms='error')
    assert [t.qualname for t in tax.taxa('genus')] == ['unknown (F)', 'unknown (G)', 'X']


def test_whitespace_and_case_variants():
    df = pd.DataFrame({'Genus': ['Amphiprion', ' amphiprion', 'Amphiprion ', 'AMPHIPRION', 'Dascyllus'],
                       'species': ['Amphiprion  ocellaris', 'Amphiprion ocellaris', 'amphiprion\tocellaris', 'Amphiprion percula', 'Dascyllus aruanus']})
    tax = build(df)
    assert [t.name for t in tax.taxa('genus')] == ['Amphiprion', 'Dascyllus']       # most frequent spelling
    assert [t.name for t in tax.taxa('species')] == ['Amphiprion ocellaris', 'Amphiprion percula', 'Dascyllus aruanus']
    assert tax.counts('genus').tolist() == [4, 1] and tax.counts('species').tolist() == [3, 1, 1]
    cv = {(c['rank'], c['name']): c['variants'] for c in tax.report['case_variants']}
    assert cv[('genus', 'Amphiprion')] == ['Amphiprion', 'amphiprion', 'AMPHIPRION']
    assert cv[('species', 'Amphiprion ocellaris')] == ['Amphiprion ocellaris', 'amphiprion ocellaris']
    assert tax.report['whitespace_fixed'] == 4
    assert tax.taxon('  AMPHIPRION   OCELLARIS ').id == 0


def test_display_tie_goes_to_first_seen():
    assert build(pd.DataFrame({'genus': ['abc', 'ABC']})).taxa(0)[0].name == 'abc'
    assert build(pd.DataFrame({'genus': ['ABC', 'abc']})).taxa(0)[0].name == 'ABC'


def test_normalize_name():
    assert normalize_name('  a \n b ') == 'a b'
    assert all(normalize_name(x) is None for x in [None, np.nan, pd.NA, '', '  ', '\t'])
    assert normalize_name(3) == '3'


def test_string_dtype_and_numbers():
    df = pd.DataFrame({'genus': pd.array(['A', None, 'B'], dtype='string'), 'species': [1, 2, 2]})
    tax = build(df, missing='drop')
    assert [t.name for t in tax.taxa('species')] == ['1', '2'] and tax.rows.tolist() == [0, 2]


# ---------------------------------------------------------------- homonyms

MORUS = pd.DataFrame([
    ('Animalia', 'Chordata', 'Aves', 'Suliformes', 'Sulidae', 'Morus', 'Morus bassanus'),
    ('Plantae', 'Tracheophyta', 'Magnoliopsida', 'Rosales', 'Moraceae', 'Morus', 'Morus alba'),
    ('Plantae', 'Tracheophyta', 'Magnoliopsida', 'Rosales', 'Moraceae', 'Morus', 'Morus nigra'),
], columns=list(RANKS))


def test_homonyms_split_warns_once_and_reports():
    with pytest.warns(TaxonomyWarning, match=r"1 name occurs.*genus 'Morus'.*homonyms='error'") as w:
        tax = Taxonomy.from_table(MORUS)
    assert len([x for x in w if issubclass(x.category, TaxonomyWarning)]) == 1
    (h,) = tax.report['homonyms']
    assert h['rank'] == 'genus' and h['name'] == 'Morus' and len(h['lineages']) == 2
    assert [t.qualname for t in tax.taxa('genus')] == ['Morus (Sulidae)', 'Morus (Moraceae)']
    assert tax.taxon('Morus (Moraceae)').lineage[0] == 'Plantae'
    with pytest.raises(TaxonomyError) as e:
        tax.taxon('morus')
    msg = str(e.value)
    assert 'ambiguous' in msg and 'Animalia > Chordata' in msg and 'Plantae > Tracheophyta' in msg and 'lineage tuple' in msg
    assert tax.taxon(('Moraceae', 'Morus')).id == 1
    assert tax.taxon(tuple(MORUS.iloc[0, :6])).id == 0
    assert [t.name for t in tax.children(('Moraceae', 'Morus'))] == ['Morus alba', 'Morus nigra']


def test_homonyms_error_names_rank_name_and_lineages():
    with pytest.raises(TaxonomyError) as e:
        Taxonomy.from_table(MORUS, homonyms='error')
    msg = str(e.value)
    assert "genus 'Morus'" in msg and 'Sulidae > Morus' in msg and 'Moraceae > Morus' in msg and "homonyms='split'" in msg


def test_inconsistent_hierarchy(fish):
    df = pd.concat([fish, pd.DataFrame([('Actinopterygii', 'Perciformes', 'Serranidae', 'Dascyllus', 'Dascyllus aruanus')], columns=COLS)])
    with pytest.raises(TaxonomyError, match="genus 'Dascyllus' occurs under different parents.*Pomacentridae > Dascyllus.*Serranidae > Dascyllus"):
        Taxonomy.from_table(df, homonyms='error')
    with pytest.warns(TaxonomyWarning):
        tax = Taxonomy.from_table(df)
    assert [h['name'] for h in tax.report['homonyms']] == ['Dascyllus']      # the species split is inherited, not reported
    assert {t.qualname for t in tax.taxa('species') if t.name == 'Dascyllus aruanus'} == \
        {'Dascyllus aruanus (Dascyllus (Pomacentridae))', 'Dascyllus aruanus (Dascyllus (Serranidae))'}


def test_same_name_at_two_levels(fish):
    df = pd.DataFrame({'genus': ['Aa', 'Bb'], 'species': ['Bb', 'Cc']})
    tax = build(df)
    with pytest.raises(TaxonomyError, match="pass level="):
        tax.taxon('Bb')
    assert tax.taxon('Bb', level='species').rank == 'species'


# ---------------------------------------------------------------- ids, navigation, prompts

def test_ids_independent_of_row_order(fish):
    a = build(fish)
    for seed in range(3):
        shuffled = fish.sample(frac=1, random_state=seed)
        b = build(shuffled)
        for r in a.ranks: assert b.taxa(r) == a.taxa(r)
        assert (b.encode(fish) == a.labels).all()
        assert (b.labels == a.labels[shuffled.index.to_numpy()]).all()   # row i of the shuffle is input row index[i]


def test_ids_sorted_by_casefolded_lineage():
    df = pd.DataFrame({'genus': ['b', 'A', 'B', 'a'], 'species': ['z', 'y', 'x', 'w']})
    tax = build(df)
    assert [t.lineage for t in tax.taxa('species')] == [('A', 'w'), ('A', 'y'), ('b', 'x'), ('b', 'z')]


def test_labels_and_counts(fish):
    tax = build(fish)
    assert tax.labels.dtype == np.int64 and tax.labels.shape == (8, 5) and tax.rows.tolist() == list(range(8))
    for l in range(5):
        assert (np.bincount(tax.labels[:, l], minlength=tax.n_taxa(l)) == tax.counts(l)).all()
        names = [tax.taxa(l)[i].name for i in tax.labels[:, l]]
        assert names == fish.iloc[:, l].tolist()
    assert [t.name for t in tax.few_shot(1)] == ['Amphiprion percula', 'Dascyllus aruanus', 'Epinephelus lanceolatus',
                                                  'Arothron hispidus', 'Carcharhinus leucas', 'Rhincodon typus']
    assert len(tax.few_shot(2)) == 7 and [t.name for t in tax.few_shot(1, 'class')] == []
    for bad in [0, -1, 2.5, True]:
        with pytest.raises(TaxonomyError, match='k must be'):
            tax.few_shot(bad)


def test_navigation(fish):
    tax = build(fish)
    oc = tax.taxon('Amphiprion ocellaris')
    assert tax.parent(oc).name == 'Amphiprion' and tax.parent(oc, 'class').name == 'Actinopterygii'
    assert [t.name for t in tax.ancestors(oc)] == ['Actinopterygii', 'Perciformes', 'Pomacentridae', 'Amphiprion']
    assert [t.name for t in tax.ancestors(oc, 'order')] == ['Perciformes']
    assert [t.name for t in tax.lineage(oc)] == list(FISH[0])
    assert [t.name for t in tax.siblings(oc)] == ['Amphiprion percula']
    assert [t.name for t in tax.siblings(oc, 'order')] == ['Amphiprion percula', 'Dascyllus aruanus', 'Epinephelus lanceolatus']
    assert [t.name for t in tax.children('Actinopterygii')] == ['Perciformes', 'Tetraodontiformes']
    assert [t.name for t in tax.children('Actinopterygii', 'genus')] == ['Amphiprion', 'Dascyllus', 'Epinephelus', 'Arothron']
    assert [t.rank for t in tax.descendants('Elasmobranchii')] == ['order'] * 2 + ['family'] * 2 + ['genus'] * 2 + ['species'] * 2
    assert [t.name for t in tax.descendants('Elasmobranchii', 'species')] == ['Carcharhinus leucas', 'Rhincodon typus']
    assert tax.children(oc) == [] and tax.descendants(oc) == [] and tax.parent('Elasmobranchii') is None
    assert tax.siblings('Actinopterygii') == [tax.taxon('Elasmobranchii')]
    with pytest.raises(TaxonomyError, match='not above'):
        tax.parent(oc, 'species')
    with pytest.raises(TaxonomyError, match='not below'):
        tax.descendants('Amphiprion', 'family')
    with pytest.raises(TaxonomyError, match="did you mean 'Amphiprion'"):
        tax.children('Amphiprin')


def test_taxon_lookup_errors(fish):
    tax = build(fish)
    assert tax.taxon(tax.taxa('genus')[2]) is tax.taxa('genus')[2]
    assert tax.taxon(3, level='genus').name == 'Arothron'
    with pytest.raises(TaxonomyError, match='needs a level'):
        tax.taxon(0)
    with pytest.raises(TaxonomyError, match='ids run 0..5'):
        tax.taxon(6, level='genus')
    with pytest.raises(TaxonomyError, match='empty'):
        tax.taxon('  ')
    with pytest.raises(TaxonomyError, match='empty names'):
        tax.taxon(('Actinopterygii', ''))
    with pytest.raises(TaxonomyError, match='no taxon'):
        tax.taxon(('Elasmobranchii', 'Perciformes'))
    with pytest.raises(TaxonomyError, match='not part of this taxonomy'):
        tax.taxon(Taxon('genus', 'Morus', ('Morus',), 3, 0))
    with pytest.raises(TaxonomyError, match='by name, lineage tuple or id'):
        tax.taxon(1.5)
    with pytest.raises(TaxonomyError, match="at level 'genus'"):
        tax.taxon('Perciformes', level='genus')


def test_prompts(fish):
    tax = build(fish)
    assert tax.prompt('Amphiprion') == ['class: Actinopterygii', 'order: Perciformes', 'family: Pomacentridae', 'genus: Amphiprion']
    assert tax.prompt('Amphiprion', form='lineage') == 'Actinopterygii Perciformes Pomacentridae Amphiprion'
    assert tax.prompts('order', 'lineage')[0] == 'Actinopterygii Perciformes'
    assert len(tax.prompts(-1)) == 7
    with pytest.raises(TaxonomyError, match="'per_level', 'lineage'"):
        tax.prompt('Amphiprion', form='caption')


def test_encode_unknown_taxa(fish):
    tax = build(fish.iloc[:4])
    with pytest.raises(TaxonomyError, match=r"4 rows name taxa.*row position 4.*Serranidae.*unknown='mark'"):
        tax.encode(fish)
    out = tax.encode(fish, unknown='mark')
    assert out[4].tolist() == [0, 0, -1, -1, -1] and out[6].tolist() == [-1] * 5 and (out[:4] == tax.labels).all()
    with pytest.raises(TaxonomyError, match="'error' or 'mark'"):
        tax.encode(fish, unknown='skip')
    with pytest.raises(TaxonomyError, match='expected a pandas DataFrame'):
        tax.encode(FISH)


def test_repr_and_summary(fish):
    tax = build(fish)
    assert repr(tax) == 'Taxonomy(class..species: 2 class, 4 order, 5 family, 6 genus, 7 species; 8 rows)'
    s = tax.summary()
    assert list(s.columns) == ['rank', 'n_taxa', 'min_rows', 'median_rows', 'max_rows', 'n_few_shot']
    assert s.n_taxa.tolist() == [2, 4, 5, 6, 7] and s.max_rows.tolist() == [6, 5, 4, 3, 2] and s.n_few_shot.iloc[-1] == 7


# ---------------------------------------------------------------- JSON

def test_json_round_trip(fish):
    with pytest.warns(TaxonomyWarning):
        for tax in [build(fish), build(with_gaps(fish), missing='drop'), build(with_gaps(fish), missing='fill'), Taxonomy.from_table(MORUS)]:
            s = tax.to_json()
            back = Taxonomy.from_json(s)
            assert back == tax and back.report == tax.report and (back.rows == tax.rows).all()
            for r in tax.ranks: assert back.taxa(r) == tax.taxa(r)
            assert [t.qualname for t in back.taxa(-2)] == [t.qualname for t in tax.taxa(-2)]
            assert json.loads(s)['format'] == 'taxanb.taxonomy'
            assert back.to_json() == s


def test_json_bad_input(fish):
    s = build(fish).to_json()
    for bad, msg in [('', 'not valid JSON'), ('[1, 2]', 'not a taxanb taxonomy'), (None, 'not valid JSON'),
                     (s.replace('"names"', '"nomen"'), 'incomplete or damaged'),
                     (s.replace('"ranks": ["class"', '"ranks": ["tribe"'), 'unknown rank')]:
        with pytest.raises(TaxonomyError, match=msg):
            Taxonomy.from_json(bad)


def test_eq(fish):
    a, b = build(fish), build(fish)
    assert a == b and a != build(fish.iloc[:7]) and a != build(fish, ranks=['genus', 'species']) and a != 'taxonomy'
    c = build(pd.concat([fish, fish.iloc[:1]]))                    # same taxa, different counts
    assert a != c


def test_direct_construction_checks():
    with pytest.raises(TaxonomyError, match='names and parents for each'):
        Taxonomy(['genus', 'species'], [['A']], [[-1]])
    with pytest.raises(TaxonomyError, match='parent ids outside'):
        Taxonomy(['genus', 'species'], [['A'], ['A a']], [[-1], [1]])
    with pytest.raises(TaxonomyError, match=r'labels must have shape \(n_rows, 2\)'):
        Taxonomy(['genus', 'species'], [['A'], ['A a']], [[-1], [0]], labels=[0, 0])
    t = Taxonomy(['genus', 'species'], [['A'], ['A a']], [[-1], [0]], labels=[[0, 0], [0, 0]])
    assert t.counts('species').tolist() == [2] and t.report == {}


# ---------------------------------------------------------------- scale and the real FishNet table

def test_large_table_is_vectorised():
    import time
    rng = np.random.default_rng(0)
    n_sp, n = 5000, 200_000
    genus_of = rng.integers(0, 1500, n_sp); family_of = rng.integers(0, 300, 1500)
    sp = rng.integers(0, n_sp, n)
    df = pd.DataFrame({'family': np.array([f'F{i}' for i in range(300)], dtype=object)[family_of[genus_of[sp]]],
                       'genus': np.array([f'G{i}' for i in range(1500)], dtype=object)[genus_of[sp]],
                       'species': np.array([f'S{i}' for i in range(n_sp)], dtype=object)[sp]})
    t = time.perf_counter()
    tax = build(df)
    assert time.perf_counter() - t < 10
    assert tax.n_taxa('species') == len(np.unique(sp)) and len(tax.labels) == n


def test_fishnet_drop_and_fill(shared_data):
    f = shared_data / 'fishnet' / 'test.csv'
    if not f.exists(): pytest.skip(f'{f} not present')
    df = pd.read_csv(f, low_memory=False)
    with pytest.raises(TaxonomyError, match="rows have no species.*missing='fill'"):
        Taxonomy.from_table(df)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', TaxonomyWarning)
        d = Taxonomy.from_table(df, missing='drop')
        fl = Taxonomy.from_table(df, missing='fill')
    assert d.ranks == fl.ranks == ('class', 'order', 'family', 'genus', 'species')
    assert d.report['missing']['species'] == 10406 and d.report['n_kept'] + d.report['n_dropped'] == len(df) == 18901
    assert df.iloc[d.rows][['Class', 'Genus', 'species']].notna().all().all()
    assert len(fl.labels) == len(df) and fl.report['n_filled'] == d.report['n_dropped']
    assert any(t.name == 'unknown' for t in fl.taxa('species'))
    assert (d.encode(df.iloc[d.rows]) == d.labels).all() and (fl.encode(df) == fl.labels).all()
    assert Taxonomy.from_json(d.to_json()) == d
    sp = d.taxa('species')[0]
    assert d.prompt(sp, 'lineage') == ' '.join(sp.lineage) and len(d.prompt(sp)) == 5
