# Config loading + validation, the expanded experiment matrix, path helpers, input functions.
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import yaml
from snakemake.logging import logger
from snakemake.utils import update_config, validate


def _source(rel):
    """A file of this repository (relative to its root), also when the workflow is deployed as a
    snakedeploy module: resolved from this file's folder, never from the user's working directory.
    """
    return str(workflow.source_path(f"../../{rel}"))


# workflow/rules -> the repository; None when the module is read from a remote host
_BASEDIR = workflow.current_basedir
REPO = (
    Path(_BASEDIR.get_path_or_uri(secret_free=True)).resolve().parents[1]
    if type(_BASEDIR).__name__ == "LocalSourceFile"
    else None
)
if REPO and (REPO / "d2st").is_dir() and str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the library, also when it is not pip-installed

from d2st.plan import (  # noqa: E402
    MatrixError,
    expand_matrix,
    lr_candidates,
    method_key,
    selection_of,
)

# Rules call plain `d2st` (and `d2st-progress`, workflow/bin): the command text never holds a
# path, so running from another venv or checkout is no rerun trigger. This interpreter's bin
# folder goes first on PATH (jobs inherit it; under --sdm conda the env's bin comes first).
_PATH = [str(Path(sys.executable).parent)]
if REPO:
    _PATH.append(str(REPO / "workflow" / "bin"))
os.environ.update(PATH=os.pathsep.join([*_PATH, os.environ.get("PATH", "")]))
if shutil.which("d2st") is None:
    logger.warning(
        f"d2st: no `d2st` command next to {sys.executable} nor on PATH; every job will fail. "
        "Install the package into this environment: pip install -e <repository>"
    )
CONDA_ENV = "../envs/d2st.yaml"


# ---------------------------------------------------------------- config
if (
    "tables" not in config
):  # no --configfile: the synthetic demo (plus any --config overrides)
    _default = yaml.safe_load(Path(_source("workflow/config/default.yaml")).read_text())
    update_config(_default, dict(config))
    config.clear()
    config.update(_default)

validate(config, schema="../schemas/config.schema.yaml")
validate(config["tables"], schema="../schemas/experiments.schema.yaml")

try:
    MATRIX = expand_matrix(config)
except MatrixError as e:
    raise ValueError(f"config error in the experiment matrix: {e}") from None

DATA = config["data_dir"]
# everything the workflow writes besides data and splits (test.yaml: results/test)
RESULTS = config["results_dir"]
CONFIGS_DIR = f"{RESULTS}/configs"
RUNS_DIR = f"{RESULTS}/runs"
EVALS_DIR = f"{RESULTS}/evals"
TABLES_DIR = f"{RESULTS}/tables"
FIGURES_DIR = f"{RESULTS}/figures"
REPORT_DIR = f"{RESULTS}/report"  # pages of the HTML report (headline, config, curves)
# the paper's numbers, shipped with the workflow (results/reported/), resolved at parse time
REPORTED = {
    spec["reported"]: _source(f"results/reported/{spec['reported']}")
    for spec in config["tables"].values()
    if spec.get("reported")
}
SPLITS = config["splits_dir"]
RES = config["resources"]
# learning-rate selection on the validation classes (d2st.plan.Selection): candidate runs per
# method, trained like the table's runs and scored on `lr_selection.partition`
SELECTION = selection_of(config)
LR_CANDIDATES = lr_candidates(MATRIX.runs, SELECTION)
CANDIDATE_RUNS = {r.name: r for c in LR_CANDIDATES.values() for r in c.values()}
LR_TABLE = (
    f"{TABLES_DIR}/{list(config['tables'])[0]}_lr.csv"  # demo_lr.csv for the demo
)
RUNS = {**MATRIX.runs, **CANDIDATE_RUNS}
TABLES = list(config["tables"])
for _t, _spec in config["tables"].items():
    for _ds in {RUNS[r.run].dataset for r in MATRIX.tables[_t]}:
        if _ds not in config["datasets"]:
            raise ValueError(
                f"tables.{_t} uses dataset {_ds!r}, which is not under `datasets:`"
            )

DATASETS_USED = sorted({r.dataset for r in RUNS.values()})
SYNTHETIC = [d for d in DATASETS_USED if config["datasets"][d].get("synthetic")]
REAL = [d for d in DATASETS_USED if d not in SYNTHETIC]


def _alternatives(names):
    """A regex matching exactly these names (never matches anything when empty)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


wildcard_constraints:
    dataset=_alternatives(config["datasets"]),
    synth=_alternatives(SYNTHETIC),
    real=_alternatives(REAL),
    partition="train|val|test",
    frames=r"\d+",
    size=r"\d+",
    run=_alternatives(RUNS),
    table=_alternatives(TABLES),
    backbone=r"[a-z0-9_]+?",
    seed=r"\d+",


# ---------------------------------------------------------------- missing data, said once
MISSING_VIDEOS = {
    d: config["datasets"][d].get("videos")
    for d in REAL
    if not config["datasets"][d].get("videos")
    or not Path(config["datasets"][d]["videos"]).is_dir()
}
if MISSING_VIDEOS:
    logger.warning(
        "d2st: video roots missing for {} dataset(s); their prepare jobs will fail until you set "
        "`datasets.<name>.videos` in the config (see docs/WORKFLOW.md):\n{}".format(
            len(MISSING_VIDEOS),
            "\n".join(f"    {d}: {p!s} (not found)" for d, p in MISSING_VIDEOS.items()),
        )
    )


# ---------------------------------------------------------------- paths
def shard_dir(dataset, partition, frames):
    size = config["datasets"][dataset]["size"]
    return f"{DATA}/shards/{dataset}/{partition}/{frames}f_{size}px"


def manifest(dataset, partition, frames):
    return f"{shard_dir(dataset, partition, frames)}/manifest.csv"


def synth_dir(dataset):
    return f"{DATA}/{dataset}"


def pretrained_path(dataset, backbone, seed=0):
    """The workflow's own pretrained trunk; one per seed (seed = init + episodes + trunk)."""
    return f"{DATA}/pretrained/{dataset}/{backbone}_s{seed}.safetensors"


def weights_of(run):
    """(weights value for the run config, input file or None) of a run's backbone."""
    w = config["weights"].get(run.backbone, "hub")
    if w == "pretrain":
        if run.dataset not in SYNTHETIC:
            raise ValueError(
                f"weights.{run.backbone}: 'pretrain' needs a synthetic dataset, run {run.name} "
                f"uses {run.dataset}"
            )
        p = pretrained_path(run.dataset, run.backbone, run.seed)
        return p, p
    if w in ("hub", "random"):
        return w, None
    return w, w


def eval_csv(run):
    return f"{EVALS_DIR}/{run}/eval.csv"


def table_outputs(table):
    out = [f"{TABLES_DIR}/{table}.{ext}" for ext in ("csv", "md", "png", "html")]
    if config["tables"][table].get("kind") == "demo":
        out.append(f"{TABLES_DIR}/{table}_per_class.png")
    return out


def curve_outputs(tables):
    """Training-curve plots of the trained runs of these tables (frozen baselines have none)."""
    runs = dict.fromkeys(r for t in tables for r in table_runs(t))
    return [f"{REPORT_DIR}/curves/{r}.png" for r in runs if RUNS[r].needs_training]


def report_outputs(tables):
    """What the HTML report shows besides the tables: headline page, config, training curves."""
    return [
        f"{REPORT_DIR}/headline.html",
        f"{REPORT_DIR}/config.html",
        *curve_outputs(tables),
    ]


def shard_targets():
    """Every declared partition of every dataset in use (val is decoded too, for users' tuning)."""
    frames = sorted({r.frames for r in RUNS.values()})
    return [
        manifest(d, p, f)
        for d in DATASETS_USED
        for p in config["datasets"][d]["partitions"]
        for f in frames
    ]


def wanted_tables():
    return config.get("targets") or TABLES


def default_targets():
    wanted = wanted_tables()
    return [
        *(p for t in wanted for p in table_outputs(t)),
        *hash_targets(wanted),
        *report_outputs(wanted),
        *shard_targets(),
    ]


# Table 3 / Figure 4 (rules/efficiency.smk)
FIGURE4_TABLES = ("table1_clip", "efficiency")  # (accuracy table, efficiency table)


def figure4_targets():
    """Figure 4's outputs when the config has both of its tables (the paper config)."""
    if not all(t in config["tables"] for t in FIGURE4_TABLES):
        return []
    return [f"{FIGURES_DIR}/figure4.{ext}" for ext in ("csv", "png")]


def model_info_json(run):
    return f"{RESULTS}/efficiency/{run}.json"


def all_table_targets():
    return [
        *(p for t in TABLES for p in table_outputs(t)),
        *report_outputs(TABLES),
        *figure4_targets(),
    ]


# ---------------------------------------------------------------- input functions and helpers of the rules


def synth_flags():
    """`d2st synth` extra flags from synthetic.args ({videos_per_class: 30} -> --videos-per-class 30)."""
    return cli_flags(config["synthetic"].get("args", {}))


def cli_flags(args):
    """Command-line flags from a mapping: {a_b: 3} -> --a-b 3, {x: true} -> --x, lists spaced."""
    flags = []
    for k, v in args.items():
        flag = f"--{k.replace('_', '-')}"
        if isinstance(v, bool):
            flags.append(flag if v else "")
        elif isinstance(v, list):
            flags.append(f"{flag} {' '.join(map(str, v))}")
        else:
            flags.append(f"{flag} {v}")
    return " ".join(f for f in flags if f)


def video_root(dataset):
    if dataset in SYNTHETIC:
        return f"{synth_dir(dataset)}/videos"
    return (
        config["datasets"][dataset].get("videos")
        or f"<unset: datasets.{dataset}.videos>"
    )


def frame_index_scheme(dataset):
    """The authors' frame indices for a dataset, d2st.data.sampling (uniform but Kinetics-100)."""
    from d2st.data import sampling

    return sampling.official_rule(dataset)


def prepare_inputs(wc):
    inputs = {"split": f"{SPLITS}/{wc.dataset}/{wc.partition}.csv"}
    if wc.dataset in SYNTHETIC:  # generated videos are a workflow output
        inputs["videos"] = f"{synth_dir(wc.dataset)}/videos"
    return inputs


def run_inputs(wc):
    run = RUNS[wc.run]
    inputs = {
        "train": manifest(run.dataset, "train", run.frames),
    }
    _, wfile = weights_of(run)
    if wfile:
        inputs["weights"] = wfile
    return inputs


def selected_by(name):
    """The method key whose chosen lr this (final) run uses, or None."""
    if SELECTION is None or name in CANDIDATE_RUNS:
        return None
    key = method_key(RUNS[name], SELECTION)
    return key if key in LR_CANDIDATES else None


def run_config_inputs(wc):
    inputs = {"train": run_inputs(wc)["train"]}
    if selected_by(wc.run):
        inputs["lr"] = LR_TABLE
    return inputs


def run_settings(name):
    """The run's settings as JSON, the `d2st resolve --settings` of rule run_config."""
    return json.dumps(run_dict(name), sort_keys=True)


def lr_args(wc, input):
    """`--lr-table/--method` of a run whose lr the selection chooses (else nothing)."""
    method = selected_by(wc.run)
    return f"--lr-table {input.lr} --method {method}" if method else ""


def reused_candidates(name):
    """Candidate runs a final run may be identical to: its method's, at the selection seed.

    The final run of the selection seed at the chosen lr is the candidate trained at that lr
    under another name; `d2st train --reuse-from` adopts its weights (d2st.train.reuse_identical).
    """
    method = selected_by(name)
    if method is None or RUNS[name].seed != SELECTION.seed:
        return []
    return [c.name for c in LR_CANDIDATES[method].values()]


def train_priority(wc):
    """Longest jobs first, so no long job starts last with the other cores idle: the lr
    candidates (the selection waits for all of them), then runs with deformable attention
    (aDSTA: the dearest per episode), then other trained runs, then runs with nothing to
    train (a frozen backbone, or a final run adopting its identical candidate)."""
    from d2st.models.variants import VARIANTS

    run = RUNS[wc.run]
    if wc.run in CANDIDATE_RUNS:
        return 3
    if not run.needs_training or reused_candidates(wc.run):
        return 0
    spec = VARIANTS.get(run.adapter)
    return (
        2
        if spec is not None and any(p.startswith("adsta") for p in spec.pathways)
        else 1
    )


def train_inputs(wc):
    inputs = run_inputs(wc)
    for c in reused_candidates(wc.run):
        inputs[f"reuse_{c}"] = f"{RUNS_DIR}/{c}/done"
    return inputs


def reuse_args(wc):
    return " ".join(f"--reuse-from {RUNS_DIR}/{c}" for c in reused_candidates(wc.run))


def selection_inputs(wildcards=None):
    return [eval_csv(r) for r in CANDIDATE_RUNS]


def val_overrides(name):
    """`d2st evaluate` overrides scoring a candidate run on the selection partition."""
    run = RUNS[name]
    shards = shard_dir(run.dataset, SELECTION.partition, run.frames)
    return _eval_args(shards, [SELECTION.shot], SELECTION.episodes)


def _eval_args(shards, shots, episodes):
    """The evaluation overrides every `d2st evaluate` job of the workflow passes."""
    return [
        f"data.test_shards={shards}",
        f"eval.shots=[{','.join(map(str, shots))}]",
        f"eval.episodes={episodes}",
        f"eval.seed={config['eval']['seed']}",
    ]


def run_dict(name):
    """The run's settings before resolution (d2st.plan.run_dict); rule run_config resolves them."""
    from d2st.plan import run_dict as plan_run_dict

    run = RUNS[name]
    return plan_run_dict(
        config,
        run,
        train_shards=shard_dir(run.dataset, "train", run.frames),
        test_shards=shard_dir(run.dataset, "test", run.frames),
        weights=weights_of(run)[0],
        out_dir=RUNS_DIR,
    )


def eval_inputs(wc):
    """What a run's evaluation reads: test shards, split and pairs (a table's run) or the
    validation shards (an lr candidate, scored for lr_selection)."""
    run = RUNS[wc.run]
    if wc.run in CANDIDATE_RUNS:
        return {"val": manifest(run.dataset, SELECTION.partition, run.frames)}
    inputs = {
        "test": manifest(run.dataset, "test", run.frames),
        "split": f"{SPLITS}/{run.dataset}/test.csv",  # class names for per_class.csv and pairs
    }
    if config["datasets"][run.dataset].get("pairs"):
        inputs["pairs"] = f"{synth_dir(run.dataset)}/pairs.csv"
    return inputs


def evaluate_args(name, input):
    """The evaluation flags of a run's `d2st train --evaluate` (see eval_inputs)."""
    if name in CANDIDATE_RUNS:
        flags, evals = [], val_overrides(name)
    else:
        flags = [f"--split {input.split}"]
        if "pairs" in input.keys():
            flags.append(f"--pairs {input.pairs}")
        evals = eval_overrides(name, input.test)
    return " ".join(flags + [f"--eval {shlex.quote(e)}" for e in evals])


def lr_candidate_rows():
    """(method key, lr, candidate run) rows of the selection, for rule select_lr."""
    return [
        (key, lr, run.name, run.adapter, run.metric)
        for key, c in LR_CANDIDATES.items()
        for lr, run in c.items()
    ]


def eval_overrides(name, test_manifest):
    """`d2st evaluate` overrides of a run's eval section: shards, shots, episodes, seed."""
    run = RUNS[name]
    by_metric = config["eval"].get("episodes_by_metric", {})
    episodes = by_metric.get(run.metric, config["eval"]["episodes"])
    return _eval_args(Path(test_manifest).parent, MATRIX.eval_shots[name], episodes)


def table_runs(table):
    return list(dict.fromkeys(r.run for r in MATRIX.tables[table]))


def table_inputs(wc):
    spec = config["tables"][wc.table]
    inputs = {"evals": [eval_csv(r) for r in table_runs(wc.table)]}
    # efficiency tables: model counts and GMACs per run (rules/efficiency.smk)
    if spec.get("kind") == "efficiency":
        inputs["info"] = [model_info_json(r) for r in table_runs(wc.table)]
    if spec.get("reported"):
        inputs["reported"] = REPORTED[spec["reported"]]
    return inputs


def per_class_inputs(wc):
    runs = table_runs(wc.table)
    bimhm = [r for r in runs if RUNS[r].metric == "bimhm"]
    return [f"{EVALS_DIR}/{r}/per_class.csv" for r in (bimhm or runs)]


# ---------------------------------------------------------------- stage hashes (rules/hashes.smk)
def hash_items(table):
    """(stage, item, path) of every file a table depends on, in pipeline order.

    data: each shard folder of the table's datasets (its shards.csv, which lists every shard's
    sha256, and its manifest.csv); trunk: each backbone weights file the runs load (the pretrained
    trunk of the demo); run: each run's trained weights; table: the table CSV.
    """
    runs = [RUNS[r] for r in table_runs(table)]
    items = []
    for ds, frames in sorted({(r.dataset, r.frames) for r in runs}):
        for part in config["datasets"][ds]["partitions"]:
            folder = shard_dir(ds, part, frames)
            items += [
                ("data", folder, f"{folder}/shards.csv"),
                ("data", folder, manifest(ds, part, frames)),
            ]
    for r in runs:
        wfile = weights_of(r)[1]
        if wfile:
            items.append(("trunk", f"{r.dataset}/{r.backbone}", wfile))
    items += [
        ("run", r.name, expand(rules.train.output.model, run=r.name)[0]) for r in runs
    ]
    items.append(("table", table, expand(rules.table.output.csv, table=table)[0]))
    return list(dict.fromkeys(items))


def hash_inputs(wc):
    # shards.csv is written by `d2st prepare` before manifest.csv, which is the rule's output
    return [p for _, _, p in hash_items(wc.table) if Path(p).name != "shards.csv"]


def hash_targets(tables):
    return [f"{TABLES_DIR}/{t}_hashes.csv" for t in tables]


# ---------------------------------------------------------------- tables and report
def _slashed(values):
    return "/".join(map(str, values))


def _values(values):
    return ", ".join(str(v) for v in values)


def table_caption(name):
    """What one table shows, for the HTML report: what is fixed, what varies, which numbers."""
    spec = config["tables"][name]
    kind = spec.get("kind", "paper")
    rows = MATRIX.tables[name]
    runs = table_runs(name)
    parts = [f"**{spec.get('title', name).rstrip('.')}.**"]
    fixed = {k: v for k, v in spec.get("fixed", {}).items() if k != "overrides"}
    if fixed:
        parts.append("Fixed: " + ", ".join(f"{k} {v}" for k, v in fixed.items()) + ".")
    varied = [f"{k} ({_values(v)})" for k, v in spec.get("grid", {}).items()]
    keys = {}
    for r in spec["rows"]:
        for k, v in r.get("key", {}).items():
            keys.setdefault(k, []).append(v)
    varied += [
        f"{k} ({_values(dict.fromkeys(v))})"
        for k, v in keys.items()
        if len(set(map(str, v))) > 1
    ]
    if varied:
        parts.append("Varies: " + "; ".join(varied) + ".")
    parts.append(f"{len(rows)} rows from {len(runs)} trained runs.")
    shots = _slashed(spec.get("shots", [1, 5]))
    metrics = sorted({RUNS[r].metric for r in runs})
    per_metric = {
        m: config["eval"]
        .get("episodes_by_metric", {})
        .get(m, config["eval"]["episodes"])
        for m in metrics
    }
    episodes = (
        f"{next(iter(per_metric.values()))}"
        if len(set(per_metric.values())) == 1
        else ", ".join(f"{m} {n}" for m, n in per_metric.items())
    )
    if kind == "efficiency":
        parts.append(
            "Columns: tunable parameters (count and % of the model), peak memory and seconds per "
            "training / test episode, measured on this workflow's runs."
        )
    else:
        parts.append(
            f"Accuracy in % over 5-way {shots}-shot test episodes (per shot: {episodes}; metric "
            f"{_values(metrics)}) with its 95% confidence interval (ci95)."
        )
    if kind == "demo":
        parts.append(
            "Protocol reversed_pairs: binary 1-shot accuracy on the time-reversed test class pairs "
            "(chance 50%); an order-free metric can only beat chance there through temporal "
            "modelling in the adapter."
        )
    if spec.get("reported"):
        parts.append(
            f"reported: the paper's number (results/reported/{spec['reported']}); reproduced: this "
            "workflow's."
        )
    return " ".join(parts)


def row_labels(table):
    """The table's rows, readable (the table rule's param: shown in the report, and editing a
    row re-runs the table): 'method=d2st, metric=bimhm: <run> (shots 1,5; standard)'."""
    return [
        "{}: {} (shots {}; {})".format(
            ", ".join(f"{k}={v}" for k, v in r.key.items()),
            r.run,
            ",".join(map(str, r.shots)),
            ", ".join(r.protocols),
        )
        for r in MATRIX.tables[table]
    ]


def method_labels(table):
    """run -> short legend name (the row's method key, else its adapter)."""
    return {
        r.run: str(r.key.get("method", RUNS[r.run].adapter))
        for r in MATRIX.tables[table]
    }


def config_yaml():
    """The resolved workflow config (defaults filled in) as YAML."""
    return yaml.safe_dump(json.loads(json.dumps(config)), sort_keys=False)
