"""The one interface every deploy target implements: registry, deploy, invoke, promote, rollback.

Stages (stages.py) only talk to this interface, so `--target local|aws|azure|gcp` changes where
things happen, never what happens.
"""

from __future__ import annotations

import json
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config

# The model frameworks each cloud target's prebuilt serving path loads (README, "Frameworks"): AWS and
# GCP serve in the clouds' prebuilt scikit-learn containers (no xgboost or lightgbm in them, and their
# own XGBoost containers load a bare booster, not this repository's Pipeline); Azure ML serves with
# this repository's scoring script in an environment built from pyproject.toml, so with every framework.
# A target not named here (local, k8s) runs this repository's own server. Otherwise: `serving.mode: image`.
PREBUILT_FRAMEWORKS = {"aws": ("sklearn",), "azure": ("sklearn", "xgboost", "lightgbm"), "gcp": ("sklearn",)}
_FRAMEWORK_ESTIMATORS = ("xgboost", "lightgbm")  # built-in model.estimator names of another framework


@dataclass
class ModelVersion:
    version: str
    metrics: dict[str, float] = field(default_factory=dict)
    # Registered, Approved, PendingManualApproval or Rejected (SageMaker's vocabulary, used by all).
    status: str = "Registered"
    uri: str = ""
    # A version promoted across an account/subscription/project boundary (isolation: multi): where it
    # came from, e.g. {"account": ..., "model_package_arn": ..., "version": ...}; empty otherwise.
    source: dict = field(default_factory=dict)


@dataclass
class Deployment:
    env: str
    endpoint: str  # URL (local) or endpoint name (clouds)
    version: str


@dataclass
class MonitorResult:
    """One monitor run's verdict, the same shape on every target (artifacts/monitor/report.json).

    status: ok | drift | quality | too_little_traffic | no_result. `drifted` and `quality` name what
    crossed its threshold and by how much; `features` holds every feature's score."""

    env: str
    status: str
    version: str | None = None
    rows: int = 0
    window: str = ""
    features: dict[str, dict] = field(default_factory=dict)   # name -> {psi (or the platform's score), threshold, drifted}
    prediction: dict | None = None                            # {score, threshold, drifted}
    quality: dict | None = None                               # {metric, value, threshold, passed, rows}
    drifted: list[str] = field(default_factory=list)          # "name: PSI 0.41 > 0.2"
    source: str = ""                                          # where the verdict comes from
    report_url: str = ""                                      # the cloud console page, when there is one
    notes: list[str] = field(default_factory=list)


def invoke_http(base_url: str, instances: list) -> list:
    """Predictions from a server of this repository (`serve`: a local deployment, a Kubernetes Service)
    over its SageMaker route; a non-2xx answer or no answer is a StageFailed naming the URL."""
    import urllib.error
    import urllib.request

    from ..errors import StageFailed

    url = base_url + "/invocations"
    request = urllib.request.Request(url, data=json.dumps({"instances": instances}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["predictions"]
    except urllib.error.HTTPError as exc:
        raise StageFailed(f"{url} answered {exc.code}: {exc.read()[:500]!r}") from None
    except OSError as exc:
        raise StageFailed(f"{url} did not answer: {exc}") from None


class Target(ABC):
    name: str = ""
    keeps_previous_samples = False  # previous_sample() can answer (the smoke stage says when it cannot)

    def __init__(self, config: Config, root: Path):
        self.config = config
        self.root = root

    def train(self, artifacts: Path) -> bool:
        """Run managed training that leaves the bundle in `artifacts/model`; False = train in-process."""
        return False

    @abstractmethod
    def register(self, model_dir: Path, metrics: dict, lineage: dict, approved: bool) -> ModelVersion: ...

    @abstractmethod
    def champion(self) -> ModelVersion | None:
        """The version the gate compares against: the one serving prod, if any."""

    @abstractmethod
    def deploy(self, env: str, version: str | None = None) -> Deployment:
        """Deploy `version` (a release record's: exactly that one, approved where `env` needs it), or
        without it the version due in `env` (staging: newest not rejected; prod: the promoted one)."""

    @abstractmethod
    def invoke(self, env: str, instances: list) -> list:
        """Predictions from the endpoint of `env`; raises on a non-2xx answer."""

    @abstractmethod
    def promote(self, version: str | None, to_env: str) -> ModelVersion:
        """Approve `version` (default: the one in staging) and make it the one due in `to_env`."""

    @abstractmethod
    def rollback(self, env: str) -> ModelVersion:
        """Return `env` to the version it served before, and redeploy it."""

    @abstractmethod
    def undeploy(self, env: str) -> None:
        """Remove the deployment of `env` (used by tests and clean-up)."""

    # -- the serving contract and the champion's model. A target that cannot answer returns None, and
    # the stages say what they could not check. -------------------------------------------------------
    def fetch_model(self, version: str, dest: Path) -> Path | None:
        """A folder holding the bundle of `version` (model.joblib, model.json), under `dest` if copied."""
        return None

    def serving_version(self, env: str) -> str | None:
        """The version serving `env` now (None: nothing, or unknown)."""
        return None

    def due_version(self, env: str) -> str | None:
        """The version `deploy` would put in `env` (None: unknown)."""
        return None

    def check_deployable(self, env: str, version: str, status: str | None) -> None:
        """`deploy --release/--version`: a rejected version is never deployed, and an environment that
        needs approval takes only an approved one (`status` as the registry writes it, any case)."""
        from ..errors import StageFailed

        state = (status or "").lower()
        if state == "rejected" or (self.config.environment(env).approval_required and state != "approved"):
            raise StageFailed(f"deploy: version {version} is {status or 'not approved'}; {env} needs an approved "
                              f"version (run `promote --version {version} --to {env}` first)")

    def check_framework(self, stage: str, model_dir: Path | None = None) -> None:
        """Refuse (exit 2) a model whose framework this target's prebuilt serving container cannot load,
        before anything is uploaded: the framework model.json records (register), else the one
        model.estimator names (train, deploy). Serving this repository's own image lifts the limit."""
        from ..errors import ConfigError

        allowed = PREBUILT_FRAMEWORKS.get(self.name)
        if allowed is None or self.config.serving.mode == "image":
            return
        recorded = model_dir is not None and Path(model_dir, "model.json").is_file()
        framework = json.loads(Path(model_dir, "model.json").read_text()).get("framework") if recorded else None
        estimator = self.config.model.estimator
        framework = framework or (estimator if estimator in _FRAMEWORK_ESTIMATORS else "sklearn")
        if framework in _FRAMEWORK_ESTIMATORS and framework not in allowed:
            raise ConfigError(
                f"{stage} --target {self.name}: framework: the model is {framework}, which the {self.name} "
                f"target's prebuilt serving container cannot load (it serves {', '.join(allowed)}); "
                f"this needs `serving.mode: image` (README, Frameworks), or model.estimator of scikit-learn")

    def serving_image(self) -> str | None:
        """serving.mode image: the image this commit's CI built and pushed (`MODEL_IMAGE`, a registry
        reference with a tag or digest), which `register` records with the version so that every
        environment later deploys exactly that image. None in prebuilt mode."""
        import os

        from ..errors import ConfigError

        if self.config.serving.mode != "image":
            return None
        image = os.environ.get("MODEL_IMAGE", "").strip()
        if not image:
            raise ConfigError(
                f"MODEL_IMAGE: serving.mode is image, so the {self.name} target needs the image this commit's "
                "CI built and pushed (the CI file's image step sets MODEL_IMAGE; mlops.yaml serving.mode)")
        if any(c.isspace() for c in image) or not ("@" in image or ":" in image.rsplit("/", 1)[-1]):
            raise ConfigError(f"MODEL_IMAGE: '{image}' is not an image reference with a tag or digest "
                              "(registry/repository:tag or registry/repository@sha256:...)")
        return image

    def previous_sample(self, env: str) -> list | None:
        """The sample request of the version `env` served before this one, or None."""
        return None

    def schema_of(self, version: str | None) -> list[dict] | None:
        """The input schema saved with `version` (model.json), or None when it cannot be fetched."""
        if version is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.fetch_model(version, Path(tmp))
            if folder is None or not (folder / "model.json").is_file():
                return None
            return json.loads((folder / "model.json").read_text()).get("schema")

    # -- operate: capture, the cloud's own monitor, its latest verdict ----------------------------------
    def setup_monitoring(self, env: str, version: str, baseline_dir: Path) -> dict | None:
        """Called by `deploy`: set up the platform's own monitor of `env` for `version` (SageMaker Model
        Monitor schedule, Azure ML monitor schedule, Vertex AI model monitoring) from the training
        statistics in `baseline_dir` (baseline.json, baseline.csv). None: nothing to set up (local:
        `monitor` reads the captured traffic itself)."""
        return None

    def capture_dir(self, env: str) -> Path | None:
        """The folder of `env`'s captured traffic on this machine (capture-*.jsonl), if it has one."""
        return None

    def latest_monitor_result(self, env: str) -> MonitorResult | None:
        """The newest verdict of the platform's own monitor of `env`; None: this target has no monitor
        of its own, and `monitor` computes the verdict from the captured traffic itself."""
        return None

    # -- batch ----------------------------------------------------------------------------------------
    def batch_job(self, version: str, source: str, output: str) -> dict:
        """Score `source` (a URI) into `output` with `version` as the platform's batch job, waited for;
        returns its summary (job name, state, output). The local target scores on this machine."""
        from ..errors import ConfigError

        raise ConfigError(f"batch --target {self.name}: this target has no batch job")

    def pipeline_definition(self) -> dict:
        """The managed-training pipeline definition of this target (JSON), built offline."""
        from ..errors import ConfigError

        raise ConfigError(f"--print-definition: the {self.name} target has no managed pipeline")
