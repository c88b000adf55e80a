"""vizattn.layers: records grouped into layers from their module names, with short titles."""
from vizattn.layers import layer_groups, view_label


def heads(n):
    return tuple(f"head{i}" for i in range(n)) + (("mean",) if n > 1 else ())


def test_a_vit_gives_one_group_per_layer_in_forward_order():
    names = [f"model.vit.encoder.layer.{i}.attention.attention" for i in range(12)]
    groups = layer_groups({n: heads(3) for n in names})
    assert [g.label for g in groups] == [f"layer {i}" for i in range(12)]
    assert [g.names for g in groups] == [(n,) for n in names]
    assert [e.title for e in groups[7].entries] == ["layer 7 · mean", "layer 7 · head 0", "layer 7 · head 1",
                                                   "layer 7 · head 2"]
    assert {e.name for e in groups[7].entries} == {names[7]} and groups[7].entries[0].view == "mean"


def test_new_transformers_names_group_the_same_way():
    assert [g.label for g in layer_groups([f"layers.{i}.attention" for i in (0, 1, 10)])] == ["layer 0", "layer 1",
                                                                                              "layer 10"]


def test_segformer_stages_and_blocks_by_their_depths():
    depths, n_heads = (2, 2, 3, 1), (1, 2, 5, 8)
    for fmt in ("model.segformer.encoder.block.{}.{}.attention.self", "segformer.stages.{}.blocks.{}.attention"):
        names = {fmt.format(s, b): heads(n_heads[s]) for s in range(4) for b in range(depths[s])}
        groups = layer_groups(names)
        assert [g.label for g in groups] == [f"stage {s} · block {b}" for s in range(4) for b in range(depths[s])]
        assert [e.title for e in groups[0].entries] == ["stage 0 · block 0 · head 0"]  # one head: no mean
        stage2 = groups[5]
        assert stage2.names == (fmt.format(2, 1),)
        assert len(stage2.entries) == 6 and stage2.entries[4].title == "stage 2 · block 1 · head 3"


def test_our_one_module_model_is_one_group_under_its_own_name_main_view_first():
    groups = layer_groups({"head.cca": ("effective", "step1", "step2")})
    assert [(g.label, g.names) for g in groups] == [("head.cca", ("head.cca",))]
    assert [e.title for e in groups[0].entries] == ["head.cca · effective", "head.cca · step1", "head.cca · step2"]


def test_mmseg_heads_one_group_each_under_its_own_name():
    names = ["decode_head.pam", "decode_head.cam", "auxiliary_head.pam"]
    assert [(g.label, g.names) for g in layer_groups(names)] == [
        ("decode_head.pam", ("decode_head.pam",)), ("decode_head.cam", ("decode_head.cam",)),
        ("auxiliary_head.pam", ("auxiliary_head.pam",))]


def test_two_records_of_one_block_are_told_apart_and_two_numbered_families_too():
    names = {"enc.layers.0.blocks.1.attn": heads(2), "enc.layers.0.blocks.1.cross": heads(2),
             "dec.layers.3.attn": ("head0",)}
    groups = layer_groups(names)
    assert [g.label for g in groups] == ["enc stage 0 · block 1", "dec layer 3"]
    assert groups[0].names == ("enc.layers.0.blocks.1.attn", "enc.layers.0.blocks.1.cross")
    assert [e.title for e in groups[0].entries][:2] == ["enc stage 0 · block 1 · attn · mean",
                                                       "enc stage 0 · block 1 · attn · head 0"]
    assert groups[0].entries[3].title == "enc stage 0 · block 1 · cross · mean"


def test_names_alone_give_no_entries_and_views_read_short():
    assert layer_groups([]) == []
    assert layer_groups(["a.0.b"])[0].entries == ()
    assert (view_label("head12"), view_label("mean"), view_label("all")) == ("head 12", "mean", "all")
