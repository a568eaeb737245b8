import pytest

from attribution.config import BuildConfigError, MidiFolderCorpus, load_build_config


def test_shipped_configs_validate():
    for name in ("configs/attribution-default.yaml", "configs/attribution-tiny.yaml"):
        load_build_config(name)


def test_every_error_is_reported_with_its_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: {d_model: 0, n_layrs: 3}\ntrain: {steps: -1}\ncorpus: {source: napster}\n"
                    "trak: {output: probability}\n")
    with pytest.raises(BuildConfigError) as err:
        load_build_config(path)
    text = str(err.value)
    for key in ("model.d_model", "model.n_layrs", "train.steps", "corpus", "trak.output"):
        assert key in text
    assert "bad.yaml" in text


def test_relative_manifest_is_relative_to_the_config(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("corpus: {source: midi_folder, manifest: music/manifest.csv}\n")
    cfg = load_build_config(path)
    assert isinstance(cfg.corpus, MidiFolderCorpus)
    assert cfg.corpus.manifest == tmp_path / "music" / "manifest.csv"


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(BuildConfigError, match="does not exist"):
        load_build_config(tmp_path / "nope.yaml")
    (tmp_path / "x.yaml").write_text("model: [unclosed\n")
    with pytest.raises(BuildConfigError, match="not valid YAML"):
        load_build_config(tmp_path / "x.yaml")


def test_the_trak_output_function_is_a_build_setting(tmp_path):
    path = tmp_path / "margin.yaml"
    path.write_text("trak: {output: margin}\n")
    assert load_build_config(path).trak.output == "margin"
    assert load_build_config("configs/attribution-tiny.yaml").trak.output == "loglik"
