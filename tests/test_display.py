"""interp.display: views from a model and prompt or from results/caches the user has, checked
against the model's own run (TransformerLens' run_with_cache), the bundle once per notebook,
and compact reprs."""

import json
import re

import pandas as pd
import pytest

from interp.errors import InterpError

PROMPT = "When Mary and John went to the store, John gave a drink to"
BUNDLE = "var CircuitsVis="


def view_props(html: str) -> dict:
    """{view id: props} of every deferred circuitsvis view in the HTML, packed attention unpacked."""
    from interp.report.bundle import unpack_attention

    found = {m[1]: json.loads(m[2]) for m in re.finditer(r'<script type="application/json" id="([\w-]+)-props">(.*?)</script>',
                                                         html, flags=re.S)}
    for props in found.values():
        if "packedAttention" in props:
            props["attention"] = unpack_attention(props.pop("packedAttention"))
    return found


@pytest.fixture
def fresh_notebook(monkeypatch):
    """A notebook with no bundle yet; `cell` sets the (cell id, execution count, deleted cells) seen."""
    from interp.report import notebook

    state = {"cell": (None, None, [])}
    monkeypatch.setattr(notebook, "_cell", lambda: state["cell"])
    notebook.reset()
    notebook.bundle_mode("once")
    yield state
    notebook.reset()
    notebook.bundle_mode("once")


def test_attention_from_a_patched_run_matches_the_run(zoo2l, fresh_notebook, unchanged):
    """A TransformerLens cache of a run with a head zeroed: the view shows that run's patterns."""
    import interp
    from interp import display

    def zero(z, hook):
        z[:, :, 0] = 0
        return z

    tokens = interp.capture(zoo2l, PROMPT, names="blocks.0.attn.hook_pattern").tokens[0]
    with unchanged(zoo2l), zoo2l.hooks(fwd_hooks=[("blocks.0.attn.hook_z", zero)]):
        _, cache = zoo2l.run_with_cache(PROMPT, names_filter=lambda n: n.endswith("hook_pattern"))
    _, clean = zoo2l.run_with_cache(PROMPT, names_filter=lambda n: n.endswith("hook_pattern"))
    view = display.attention(cache, tokens=tokens, layer=1)
    props = list(view_props(view._repr_html_()).values())
    assert len(props) == 1 and props[0]["tokens"] == tokens and props[0]["maskUpperTri"] is True
    got = props[0]["attention"]
    want = cache["blocks.1.attn.hook_pattern"][0]
    assert len(got) == zoo2l.cfg.n_heads
    assert max(abs(g - w) for h in range(len(got)) for row, wrow in zip(got[h], want[h].tolist())
               for g, w in zip(row, wrow)) < 6e-4
    moved = (want - clean["blocks.1.attn.hook_pattern"][0]).abs().max().item()
    assert moved > 1e-3  # the patched run's layer 1 differs from the clean one, and the view has the patched one


def test_attention_from_capture_and_from_model_agree(zoo2l, fresh_notebook):
    import interp
    from interp import display

    acts = interp.capture(zoo2l, PROMPT, names="*hook_pattern")
    a = view_props(display.attention(acts)._repr_html_())
    b = view_props(display.attention(zoo2l, PROMPT)._repr_html_())
    def strip(d):
        return [(p["tokens"], p["attention"]) for _, p in sorted((k.rsplit("-layer-", 1)[1], v) for k, v in d.items())]

    assert len(a) == zoo2l.cfg.n_layers and strip(a) == strip(b)
    assert repr(display.attention(acts)).startswith("Attention: layers 0-1 x 4 heads, 15 tokens ['<|endoftext|>', 'When'")


def test_attention_refuses_what_it_cannot_show(zoo2l):
    import interp
    from interp import display

    acts = interp.capture(zoo2l, PROMPT, names="blocks.*.hook_resid_pre")
    with pytest.raises(InterpError, match="no attention patterns"):
        display.attention(acts)
    pats = interp.capture(zoo2l, PROMPT, names="blocks.0.attn.hook_pattern")
    with pytest.raises(InterpError, match="layer 1 is not in this cache"):
        display.attention(pats, layer=1)
    with pytest.raises(InterpError, match="needs tokens"):
        display.attention(dict(pats.cache))
    with pytest.raises(InterpError, match="give the prompt"):
        display.attention(zoo2l)


def test_bundle_once_then_again_when_its_cell_reruns_or_is_deleted(zoo2l, fresh_notebook):
    from interp import display

    view = display.attention(zoo2l, "When Mary", layer=0)
    fresh_notebook["cell"] = ("cell-a", 1, [])
    assert view._repr_html_().count(BUNDLE) == 1
    assert view._repr_html_().count(BUNDLE) == 0  # same cell, same run: a second view draws from it
    fresh_notebook["cell"] = ("cell-b", 2, [])
    later = view._repr_html_()
    assert BUNDLE not in later and "__cvDraw" in later and len(later) < 40_000
    fresh_notebook["cell"] = ("cell-a", 3, [])  # the carrier cell runs again: its old output is replaced
    assert view._repr_html_().count(BUNDLE) == 1
    fresh_notebook["cell"] = ("cell-c", 4, ["cell-a"])  # the carrier cell was deleted
    assert view._repr_html_().count(BUNDLE) == 1
    fresh_notebook["cell"] = ("cell-d", 5, [])
    assert view._repr_html_().count(BUNDLE) == 0
    assert display.bundle()._repr_html_().count(BUNDLE) == 1  # always, and it becomes the carrier
    display.bundle_mode("every")
    assert view._repr_html_().count(BUNDLE) == 1 and view._repr_html_().count(BUNDLE) == 1
    with pytest.raises(InterpError, match="'once' or 'every'"):
        display.bundle_mode("twice")


def test_static_views_from_tables_and_from_model(zoo2l, fresh_notebook):
    from interp import display
    from interp.ablation import sweep
    from interp.attribution import attribute, logit_lens

    dla = attribute(zoo2l, PROMPT, " Mary", " John")
    lens = logit_lens(zoo2l, PROMPT, target=" Mary")
    sw = sweep(zoo2l, PROMPT, " Mary", " John")
    for from_table, from_model in ((display.dla(dla), display.dla(zoo2l, PROMPT, " Mary", " John")),
                                   (display.lens(lens), display.lens(zoo2l, PROMPT, target=" Mary")),
                                   (display.sweep(sw), display.sweep(zoo2l, PROMPT, " Mary", " John"))):
        assert repr(from_table) == repr(from_model) and len(repr(from_table)) < 300
        html = from_table._repr_html_()
        assert html.startswith("<figure><svg") and BUNDLE not in html
    top = sw.loc[sw["delta"].abs().idxmax()]
    assert f"L{int(top['layer'])}H{int(top['head'])}" in repr(display.sweep(sw)).split("largest changes ")[1][:12]
    final = lens[(lens["layer"] == lens["layer"].max()) & (lens["rank"] == 1)]["prob"].iloc[0]
    assert f"final p={final:.3g}" in repr(display.lens(lens))
    assert f"model value {dla.attrs['model_value'][0]:.3g}" in repr(display.dla(dla))


def test_patching_view_takes_patching_tables(zoo2l):
    from interp import display
    from interp.patching import activation_patch

    clean, corrupt = [PROMPT], ["When Alice and Bob went to the store, Bob gave a drink to"]
    resid = activation_patch(zoo2l, clean, corrupt, " Mary", " John", what="resid_pre")
    heads = activation_patch(zoo2l, clean, corrupt, " Mary", " John", what="heads")
    both = pd.concat([resid, heads])  # duplicate index labels, two components
    view = display.patching(both)
    html = view._repr_html_()
    assert html.count("<svg") == 2 and "resid_pre denoising activation" in html and "heads denoising" in html
    best = both.iloc[both["normalised"].abs().to_numpy().argmax()]
    assert f"{best['normalised']:+.3g}" in repr(view)
    toy = pd.DataFrame({"layer": [0, 0, 1, 1], "head": [0, 1, 0, 1], "normalised": [0.1, 0.9, 0.0, 0.2]})
    assert repr(display.patching(toy)).startswith("Patching: 4 rows over layer x head; largest normalised L0H1 +0.9")
    with pytest.raises(InterpError, match="lacks column"):
        display.patching(toy.drop(columns="normalised"))
    with pytest.raises(InterpError, match="head or pos"):
        display.patching(toy.drop(columns="head"))
