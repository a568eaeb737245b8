"""EK-FAC (kronfluence) and LoGra (dattri) against a direct computation of the same formula with exact curvature.

The oracle is written out here: per-window gradients from ``torch.func``, the damped Fisher built from them
exactly, ``g_out^T (F + D)^{-1} g_window`` solved directly (Woodbury: ``F`` has rank at most the number of windows).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from attribution.estimators.common import frozen_heap
from attribution.estimators import EkfacConfig, LograConfig, ekfac_scores, linear_modules, logra_scores, window_nll
from attribution.model import ModelConfig, MusicTransformer
from attribution.windows import make_windows

from .conftest import PAD, synthetic_pieces

pytest.importorskip("kronfluence")


# ----------------------------------------------------------------------------------------------- the oracle
def per_window_grads(model: nn.Module, tokens: np.ndarray, modules: list[str]) -> dict[str, torch.Tensor]:
    """Each window's (or output's) NLL gradient for the listed Linear modules: name -> (n, d_out, d_in [+1 bias])."""
    named = dict(model.named_modules())
    params = {k: v.detach() for k, v in model.named_parameters(remove_duplicate=False)}
    keys = {m: [f"{m}.weight"] + ([f"{m}.bias"] if named[m].bias is not None else []) for m in modules}
    wanted = {k: params[k] for ks in keys.values() for k in ks}

    def nll(w, row):  # untied: the head's weight (tied to the token embedding) differentiated in the head only
        p = {**params, **w}
        return window_nll(lambda x: torch.func.functional_call(model, p, (x,), tie_weights=False), row[None], PAD)[0]

    g = torch.func.vmap(torch.func.grad(nll), in_dims=(None, 0))(wanted, torch.as_tensor(tokens, dtype=torch.long))
    out = {}
    for m, ks in keys.items():
        w = g[ks[0]].double()
        out[m] = torch.cat([w, g[ks[1]].double()[..., None]], dim=-1) if len(ks) > 1 else w
    return out


def damped_solve(train: np.ndarray, query: np.ndarray, damping: np.ndarray) -> np.ndarray:
    """query (F + diag(damping))^{-1} train^T with F = train^T train / n: (n_query, p), (n, p), (p,) -> (n_query, n)."""
    n = len(train)
    dinv = 1.0 / damping
    small = n * np.eye(n) + (train * dinv) @ train.T  # Woodbury
    qd, td = query * dinv, train * dinv
    return qd @ train.T - (qd @ train.T) @ np.linalg.solve(small, train @ td.T)


# ------------------------------------------------------- (a) EK-FAC is exact where its Fisher is exact by design
class _Micro(nn.Module):
    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, d_out, bias=False)

    def forward(self, x):
        return self.lin(x)


def _micro_task():
    from kronfluence.task import Task

    class MicroTask(Task):
        """Training example (x, u, t): loss 0.5 (u . W x - t)^2; measurement (x, v): v . W x (any gradient)."""

        def compute_train_loss(self, batch, model, sample=False):
            x, u, t = batch
            return 0.5 * (((model(x) * u).sum(-1) - t) ** 2).sum()

        def compute_measurement(self, batch, model):
            x, v, _ = batch
            return (model(x) * v).sum()

    return MicroTask()


def test_ekfac_equals_the_exact_damped_fisher_where_its_factorisation_is_exact(tmp_path):
    """Design: every training gradient is rank one, G_n = r_n u_n x_n^T, with x_n = s_n R_A e_k(n) and u_n = R_S e_j(n)
    taken from two fixed orthonormal bases. The Fisher F = mean vec(G_n) vec(G_n)^T is then diagonal in R_A (x) R_S,
    and R_A, R_S are exactly the eigenbases of K-FAC's two factors (distinct eigenvalues: unequal counts and scales).
    EK-FAC's eigenvalue correction measures F's diagonal in that basis, so EK-FAC = F and its scores must equal
    g_q^T (F + lambda I)^{-1} g_n to float precision. K-FAC alone (the product of the factors' eigenvalues) is not F
    here, and the same check must fail for it."""
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments, ScoreArguments

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    d_in, d_out, n, damping = 4, 3, 60, 1e-3
    r_a = np.linalg.qr(rng.standard_normal((d_in, d_in)))[0]
    r_s = np.linalg.qr(rng.standard_normal((d_out, d_out)))[0]
    k = rng.choice(d_in, size=n, p=[0.4, 0.3, 0.2, 0.1])
    j = rng.choice(d_out, size=n, p=[0.5, 0.3, 0.2])
    x = r_a[:, k].T * rng.uniform(0.5, 2.0, size=(n, 1))
    u = r_s[:, j].T
    t = rng.standard_normal(n)
    train = torch.utils.data.TensorDataset(*(torch.tensor(a, dtype=torch.float32) for a in (x, u, t)))
    xq, vq = rng.standard_normal((5, d_in)), rng.standard_normal((5, d_out))
    query = torch.utils.data.TensorDataset(torch.tensor(xq, dtype=torch.float32), torch.tensor(vq, dtype=torch.float32),
                                           torch.zeros(5))
    model = _Micro(d_in, d_out)
    w = model.lin.weight.detach().double().numpy()
    resid = np.einsum("ni,ij,nj->n", u, w, x) - t
    g_train = (resid[:, None, None] * u[:, :, None] * x[:, None, :]).reshape(n, -1)  # (n, d_out * d_in)
    g_query = (vq[:, :, None] * xq[:, None, :]).reshape(5, -1)
    exact = damped_solve(g_train, g_query, np.full(d_out * d_in, damping))

    task = _micro_task()
    tracked = prepare_model(copy.deepcopy(model), task)
    analyzer = Analyzer("micro", tracked, task, cpu=True, disable_tqdm=True, output_dir=str(tmp_path))
    got = {}
    with frozen_heap():  # kronfluence's gc.collect() calls would scan the whole test session's heap
        for strategy in ("ekfac", "kfac"):
            args = FactorArguments(strategy=strategy, use_empirical_fisher=True, eigendecomposition_dtype=torch.float64)
            analyzer.fit_all_factors(strategy, train, per_device_batch_size=16, factor_args=args, overwrite_output_dir=True)
            analyzer.compute_pairwise_scores(f"s_{strategy}", strategy, query, train, per_device_query_batch_size=5,
                                             per_device_train_batch_size=16, overwrite_output_dir=True,
                                             score_args=ScoreArguments(damping_factor=damping))
            got[strategy] = analyzer.load_pairwise_scores(f"s_{strategy}")["all_modules"].double().numpy()
    np.testing.assert_allclose(got["ekfac"], exact, rtol=1e-4, atol=1e-5 * np.abs(exact).max())  # measured: 3e-6
    assert np.abs(got["kfac"] - exact).max() > 0.1 * np.abs(exact).max()  # the factorisation alone is not (0.97)


# ------------------------------------------------- (b) on a trained transformer small enough for exact curvature
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The project's transformer at d_model 8 with one block, trained briefly on 267 synthetic windows: its block's
    Linear layers hold 840 parameters, few enough for the exact Fisher. Four unseen windows stand for outputs."""
    from attribution.train import TrainConfig, load_model, train_model

    windows = make_windows(synthetic_pieces(80), block_size=24, pad_id=PAD)
    mcfg = ModelConfig(block_size=24, n_layer=1, n_head=2, d_model=8, pad_id=PAD)
    tcfg = TrainConfig(steps=80, batch_size=8, warmup_steps=5, checkpoints=[1.0], eval_every=80)
    result = train_model(windows, mcfg, tcfg, tmp_path_factory.mktemp("small") / "model", progress=False)
    outputs = make_windows(synthetic_pieces(3, seed=1), block_size=24, pad_id=PAD).tokens[:4]
    return load_model(result.checkpoints[-1]).eval(), windows.tokens, outputs


def exact_influence(model, train_tokens, output_tokens, modules, relative_damping):
    """g_out^T (F + D)^{-1} g_window with F the exact empirical Fisher of the windows over all listed modules
    jointly (no block-diagonal or Kronecker approximation), D = relative_damping x trace(F_l)/p_l on layer l
    (EK-FAC's default damping: 0.1 x the mean eigenvalue of each layer's Fisher)."""
    g_train, g_out = per_window_grads(model, train_tokens, modules), per_window_grads(model, output_tokens, modules)
    train = np.concatenate([g_train[m].flatten(1).numpy() for m in modules], axis=1)
    out = np.concatenate([g_out[m].flatten(1).numpy() for m in modules], axis=1)
    damp = np.concatenate([np.full(g_train[m][0].numel(), relative_damping * (g_train[m].flatten(1).numpy() ** 2).sum(1).mean()
                                   / g_train[m][0].numel()) for m in modules])
    return damped_solve(train, out, damp)


def test_ekfac_sees_the_same_gradients_and_tracks_exact_curvature(small):
    model, train, outputs = small
    everything = linear_modules(model)
    assert everything == ["blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.0.mlp.0", "blocks.0.mlp.2", "head"]
    # a huge damping leaves (G + damping)^{-1} = I / damping: kronfluence's per-window gradients are the oracle's,
    # the head's (tied to the embedding) included
    flat = lambda g: np.concatenate([g[m].flatten(1).numpy() for m in everything], axis=1)  # noqa: E731
    dots = flat(per_window_grads(model, outputs, everything)) @ flat(per_window_grads(model, train, everything)).T
    huge = ekfac_scores(model, train, outputs, EkfacConfig(fisher="empirical", damping=1e6, batch_size=64))
    np.testing.assert_allclose(huge.scores * 1e6, dots, rtol=1e-3, atol=1e-4 * np.abs(dots).max())
    assert huge.n_params == 840 + 391 * 8 and huge.modules == everything
    # EK-FAC against the exact damped Fisher of the block's layers, same formula and damping
    block = everything[:-1]
    got = ekfac_scores(model, train, outputs, EkfacConfig(fisher="empirical", batch_size=64, modules=tuple(block)))
    exact = exact_influence(model, train, outputs, block, 0.1)
    r = np.corrcoef(got.scores.ravel(), exact.ravel())[0, 1]
    assert r > 0.6  # measured 0.76; with the damping x10 for both, 0.93
    # the true Fisher (labels drawn from the model, seeded): the Gauss-Newton matrix in expectation, the default
    true = ekfac_scores(model, train, outputs, EkfacConfig(batch_size=64, modules=tuple(block)))
    assert np.corrcoef(true.scores.ravel(), got.scores.ravel())[0, 1] > 0.8  # measured 0.94 (0.69 with the exact)


# ------------------------------------------------------------------ LoGra: dattri against its formula written out
def logra_direct(attributor, model, train, outputs, modules, damping):
    """LoGra's formula computed directly: each layer's exact per-window gradient G (bias as a column), projected
    with the attributor's own two factor matrices as P_out^T G P_in, its projected empirical Fisher F_l, and
    sum over layers of q_l^T (F_l + damping x trace(F_l)/k^2 I)^{-1} p_l."""
    g_train, g_out = per_window_grads(model, train, modules), per_window_grads(model, outputs, modules)
    total = 0.0
    for layer, name in enumerate(modules):
        p_out, p_in = attributor.compressors[layer].sparsifier.sparsifier_comp
        with torch.no_grad():
            a = p_out(torch.eye(g_train[name].shape[1]), ensemble_id=0).double()  # (d_out, k)
            b = p_in(torch.eye(g_train[name].shape[2]), ensemble_id=0).double()  # (d_in + 1, k)
        proj = lambda g: torch.einsum("oi,noj,jk->nik", a, g, b).flatten(1).numpy()  # noqa: E731
        pt, po = proj(g_train[name]), proj(g_out[name])
        fisher = pt.T @ pt / len(pt)
        lam = damping * np.trace(fisher) / len(fisher)
        total = total + po @ np.linalg.solve(fisher + lam * np.eye(len(fisher)), pt.T)
    return total


def test_logra_through_dattri_equals_its_formula_computed_directly(small, tmp_path, monkeypatch):
    from attribution.estimators.logra import _loader, logra_attributor

    model, train, outputs = small
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    modules = linear_modules(model)
    cfg = LograConfig(proj_dim=16, damping=0.1, batch_size=64)
    attributor = logra_attributor(model, LograConfig(**{**cfg.to_dict(), "modules": tuple(modules)}), _loader(train, 64),
                                  str(tmp_path / "dattri"))
    direct = logra_direct(attributor, model, train, outputs, modules, cfg.damping)
    got = logra_scores(model, train, outputs, cfg)
    np.testing.assert_allclose(got.scores, direct, rtol=1e-4, atol=1e-5 * np.abs(direct).max())  # measured: 3e-6
    assert got.modules == modules and got.n_params == 840 + 391 * 8
    # and LoGra's projected curvature against the exact one over the block's layers (unprojected, joint)
    block = modules[:-1]
    exact = exact_influence(model, train, outputs, block, 0.1)
    blocked = logra_scores(model, train, outputs, LograConfig(proj_dim=16, damping=0.1, batch_size=64, modules=tuple(block)))
    assert np.corrcoef(blocked.scores.ravel(), exact.ravel())[0, 1] > 0.4  # measured 0.61 at 4 x 4 per layer
    assert not list(Path.cwd().iterdir())  # dattri's batch metadata went to a temporary folder, not the cwd


def test_wrapping_for_the_libraries_leaves_the_models_function_unchanged(small):
    from kronfluence.analyzer import prepare_model

    from attribution.estimators.ekfac import WindowTask
    from attribution.estimators.logra import LograModel

    model, train, _ = small
    x = torch.as_tensor(train[:5], dtype=torch.long)
    with torch.no_grad():
        logits, _ = model(x[:, :-1])
        tracked, _ = prepare_model(copy.deepcopy(model), WindowTask(PAD, linear_modules(model)))(x[:, :-1])
        nll = LograModel(model)(tokens=x).loss
    torch.testing.assert_close(tracked, logits, rtol=0, atol=0)
    torch.testing.assert_close(nll, window_nll(model, x, PAD).mean())
    assert model.head.weight is model.tok_emb.weight  # kronfluence wrapped a copy; the tie is intact


def test_bad_settings_say_what_to_change():
    with pytest.raises(ValueError, match="perfect square"):
        LograConfig(proj_dim=20)
    with pytest.raises(ValueError, match="fisher"):
        EkfacConfig(fisher="exact")
    with pytest.raises(ValueError, match="damping"):
        EkfacConfig(damping=0.0)


# ------------------------------------------------------------------------------- in the evaluation, cached
def test_evaluate_scores_the_estimators_caches_them_and_never_reuses_a_stale_cache(tmp_path, tmp_path_factory):
    import shutil

    import pandas as pd

    from attribution.evaluation import evaluate
    from attribution.evaluation.methods import cached_estimator, run_meta
    from attribution.retrain import load_run_inputs

    from .test_retrain import shared_ground_truth_run

    shared, _ = shared_ground_truth_run(tmp_path_factory)
    run = tmp_path / "run"
    shutil.copytree(shared, run, ignore=shutil.ignore_patterns("cache", "evaluation"))
    settings = {"logra": {"proj_dim": 16}}
    quick = dict(dattri=False, random_seeds=1, k=3, n_boot=50, projection_seeds=0, models_ensemble=False, ridges=())
    ev = evaluate(run, methods=("ekfac", "logra", "trak_margin"), method_settings=settings, **quick)
    lds = ev.metrics[ev.metrics["metric"] == "lds"]
    for mode in ("reshuffled", "fixed"):
        assert {"ekfac", "logra", "trak_margin", "trak_margin_1ckpt"} <= set(lds.loc[lds["mode"] == mode, "method"]), mode
    assert {"ekfac", "logra"} <= set(ev.snr["method"])
    items = ev.costs.set_index(ev.costs["item"].str.split(":").str[0])
    assert items.loc["ekfac", "kind"] == "attribution" and items.loc["ekfac", "core_seconds"] > 0
    assert ev.facts["estimators"]["logra"]["n_params"] == ev.facts["estimators"]["ekfac"]["n_params"]
    assert "Influence functions on the final checkpoint" in (run / "evaluation" / "report.html").read_text()
    assert (pd.read_parquet(run / "evaluation" / "costs.parquet")["item"].str.startswith("logra:")).sum() == 1
    assert "Output function: TRAK attributing the per-event margin" in (run / "evaluation" / "report.html").read_text()
    from attribution.best_method import method_cost

    assert method_cost("trak_margin", ev.costs) == pytest.approx(
        items.loc["trak_margin + trak_margin_1ckpt", "core_seconds"])

    # the same settings again: read from evaluation/<name>.npz, the recorded cost with them
    inputs, meta = load_run_inputs(run), run_meta(run)
    stored = np.load(run / "evaluation" / "ekfac.npz")["scores"]
    again, res = cached_estimator(run, inputs, meta, "ekfac")
    assert res.seconds == pytest.approx(items.loc["ekfac", "seconds"])
    # other settings are other scores: recomputed, never the cache's
    other, _ = cached_estimator(run, inputs, meta, "ekfac", {"damping": 1.0})
    assert not np.allclose(np.load(run / "evaluation" / "ekfac.npz")["scores"], stored)
    assert not np.allclose(other, again)
    # a clone without the weights scores from the cache made for its final checkpoint, and refuses without one
    clone = tmp_path / "clone"
    shutil.copytree(run, clone, ignore=shutil.ignore_patterns("*.pt"))
    held, _ = cached_estimator(clone, load_run_inputs(clone), run_meta(clone), "ekfac", {"damping": 1.0})
    np.testing.assert_allclose(held, other)
    with pytest.raises(FileNotFoundError, match="--methods"):
        cached_estimator(clone, load_run_inputs(clone), run_meta(clone), "ekfac", {"damping": 2.0})
    with pytest.raises(ValueError, match="ekfac"):
        cached_estimator(run, inputs, meta, "influence")


def test_the_best_method_record_charges_an_estimator_its_own_cost():
    import pandas as pd

    from attribution.best_method import method_cost

    costs = pd.DataFrame({"item": ["trak + tracin + grad_dot + grad_cos (one traker pass)", "ekfac: EK-FAC influence",
                                   "logra: LoGra (dattri)"], "kind": "attribution", "core_seconds": [100.0, 30.0, 4.0]})
    assert (method_cost("ekfac", costs), method_cost("logra", costs), method_cost("trak", costs)) == (30.0, 4.0, 100.0)
